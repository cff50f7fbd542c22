//! What `baton mcp` pushes: the journal, followed from its end
//! ([`crate::journal::follow`]), as the resources each new entry changes. A subscriber
//! to `baton://<path>` hears of each new version of the path, one to `baton://journal`
//! of every entry, one to `baton://status` of every change of a task's state.

use crate::journal::{Entry, Record};

pub(crate) const STATUS: &str = "baton://status";
pub(crate) const JOURNAL: &str = "baton://journal";
pub(crate) const SCHEME: &str = "baton://";

/// Journal entries `baton://journal` shows.
pub(crate) const JOURNAL_RECENT: usize = 100;

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
