//! The journal followed as it grows, for the views that push what happens (`baton mcp`,
//! `baton ui`), and read back from its end: the last entries, or those after a `seq`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::broadcast;

use super::segments::ReverseLines;
use super::{Entry, Tail};
use crate::workspace::Workspace;

/// The journal's folder is watched (inotify), so a new entry is read as soon as it is
/// written; it is also looked at this often, in case a change notice is lost (or the
/// folder cannot be watched).
const POLL: Duration = Duration::from_millis(250);

/// Follows the journal from its end as it is now, on a thread of its own (named
/// `name`), sending each new entry. (A journal that does not exist yet is looked for
/// again.)
pub(crate) fn follow(ws: Workspace, name: &str) -> broadcast::Sender<Arc<Entry>> {
    let (tx, _) = broadcast::channel(1024);
    let sender = tx.clone();
    let start = super::segments::end(&ws.journal_dir()).unwrap_or(0);
    std::thread::Builder::new()
        .name(name.into())
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
                for entry in entries {
                    // No receiver now is no error: a later subscriber gets a new one.
                    let _ = sender.send(Arc::new(entry));
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
pub(crate) fn recent(ws: &Workspace, n: usize) -> Result<Vec<Entry>> {
    let dir = ws.journal_dir();
    let end = super::segments::end(&dir)?;
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

/// The entries after `seq`, oldest first, if there are at most `max` of them (read
/// back from the end); `None` if there are more (the reader had better start over).
pub(crate) fn after(ws: &Workspace, seq: u64, max: usize) -> Result<Option<Vec<Entry>>> {
    let dir = ws.journal_dir();
    let end = super::segments::end(&dir)?;
    let mut entries = Vec::new();
    for line in ReverseLines::new(&dir, end)? {
        let Ok(entry) = serde_json::from_slice::<Entry>(&line?) else {
            continue;
        };
        if entry.seq <= seq {
            break;
        }
        if entries.len() == max {
            return Ok(None);
        }
        entries.push(entry);
    }
    entries.reverse();
    Ok(Some(entries))
}
