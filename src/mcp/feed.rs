//! What `baton mcp` pushes, and the recent journal it shows: the journal, followed from
//! its end, as the resources each new entry changes. A subscriber to `baton://<path>`
//! hears of each new version of the path, one to `baton://journal` of every entry, one
//! to `baton://status` of every change of a task's state.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::journal::segments::ReverseLines;
use crate::journal::{Entry, Record, Tail};
use crate::workspace::Workspace;

pub(crate) const STATUS: &str = "baton://status";
pub(crate) const JOURNAL: &str = "baton://journal";
pub(crate) const SCHEME: &str = "baton://";

/// Journal entries `baton://journal` shows.
pub(crate) const JOURNAL_RECENT: usize = 100;

/// The journal's folder is watched (inotify), so a new entry is read as soon as it is
/// written; it is also looked at this often, in case a change notice is lost (or the
/// folder cannot be watched).
const POLL: Duration = Duration::from_millis(250);

/// The URIs an entry changes.
pub(crate) fn changed(entry: &Entry) -> Vec<String> {
    let mut uris = vec![JOURNAL.to_string()];
    match &entry.record {
        Record::Artifact { path, .. } => uris.push(format!("{SCHEME}{path}")),
        record if record.task().is_some() => uris.push(STATUS.to_string()),
        _ => {}
    }
    uris
}

/// Follows the journal from its end as it is now, on a thread of its own, sending what
/// each new entry changes. (A journal that does not exist yet is looked for again.)
pub(crate) fn follow(ws: Workspace) -> broadcast::Sender<Arc<Vec<String>>> {
    let (tx, _) = broadcast::channel(1024);
    let sender = tx.clone();
    let start = crate::journal::segments::end(&ws.journal_dir()).unwrap_or(0);
    std::thread::Builder::new()
        .name("mcp-feed".into())
        .spawn(move || {
            let (wake, woken) = std::sync::mpsc::channel::<()>();
            let mut watcher: Option<notify::RecommendedWatcher> = None;
            let mut tail: Option<Tail> = None;
            loop {
                // Wait for a change notice (or the poll), then take every notice queued.
                let _ = woken.recv_timeout(POLL);
                while woken.try_recv().is_ok() {}
                if watcher.is_none() {
                    watcher = watch(&ws, wake.clone());
                }
                if tail.is_none() {
                    tail = Tail::open_at(&ws, start).ok().flatten();
                }
                let Some(t) = tail.as_mut() else { continue };
                let entries = match t.read_new() {
                    Ok((entries, _)) => entries,
                    Err(e) => {
                        tracing::debug!("following the journal: {e:#}");
                        tail = None;
                        continue;
                    }
                };
                for entry in &entries {
                    // No receiver now is no error: a later subscriber gets a new one.
                    let _ = sender.send(Arc::new(changed(entry)));
                }
            }
        })
        .expect("spawning a thread");
    tx
}

/// Watches the journal's folder, waking `wake` on each change; `None` if it cannot be
/// watched (not there yet: it is tried again at the next poll).
fn watch(ws: &Workspace, wake: std::sync::mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| e.kind.is_modify() || e.kind.is_create()) {
            let _ = wake.send(());
        }
    })
    .ok()?;
    watcher
        .watch(&ws.journal_dir(), notify::RecursiveMode::NonRecursive)
        .ok()?;
    Some(watcher)
}

/// The journal's last `n` entries, oldest first.
pub(crate) fn recent(ws: &Workspace, n: usize) -> anyhow::Result<Vec<Entry>> {
    let dir = ws.journal_dir();
    let end = crate::journal::segments::end(&dir)?;
    let mut entries = Vec::with_capacity(n);
    for line in ReverseLines::new(&dir, end)? {
        if let Ok(entry) = serde_json::from_slice::<Entry>(&line?) {
            entries.push(entry);
            if entries.len() >= n {
                break;
            }
        }
    }
    entries.reverse();
    Ok(entries)
}
