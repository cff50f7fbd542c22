//! What `baton mcp` pushes: the journal, followed from its end, as the resources each
//! new entry changes. A subscriber to `baton://<path>` hears of each new version of the
//! path, one to `baton://journal` of every entry, one to `baton://status` of every
//! change of a task's state.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::journal::{Entry, Record, Tail};
use crate::workspace::Workspace;

pub(crate) const STATUS: &str = "baton://status";
pub(crate) const JOURNAL: &str = "baton://journal";
pub(crate) const SCHEME: &str = "baton://";

/// How often the journal's end is looked at: well inside the 100 ms a subscriber may
/// wait, for the cost of one `fstat` per look.
const POLL: Duration = Duration::from_millis(20);

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
            let mut tail: Option<Tail> = None;
            loop {
                std::thread::sleep(POLL);
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
