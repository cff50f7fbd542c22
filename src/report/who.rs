//! The authorship history of one artifact, from the journal, as `baton who --json`
//! shows it.

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use crate::journal::{Author, ChainLink, History, TaskId};
use crate::publish;
use crate::store::{Store, VersionRow};
use crate::workspace::{RelPath, Workspace};

/// One version of the artifact, as `--json` shows it.
#[derive(Serialize)]
pub(crate) struct Version<'a> {
    pub(crate) ts: &'a str,
    pub(crate) hash: &'a str,
    pub(crate) size: u64,
    pub(crate) by: &'a Author,
    pub(crate) task: Option<&'a TaskId>,
    /// The task it was written in and the ones that led to it, nearest first.
    pub(crate) chain: Vec<ChainLink>,
}

/// What `baton who --json` prints, as a value (for `baton mcp`).
pub(crate) fn doc(ws: &Workspace, rel: &RelPath) -> Result<serde_json::Value> {
    let store = Store::open(ws)?;
    let rows = store.versions_of(rel, None)?;
    let versions = versions(&store, &rows)?;
    let on_disk = publish::hash_artifact(ws, rel).ok().map(|(h, _)| h);
    Ok(as_doc(rel, &versions, on_disk.as_deref()))
}

pub(crate) fn versions<'a>(store: &Store, rows: &'a [VersionRow]) -> Result<Vec<Version<'a>>> {
    rows.iter()
        .map(|v| {
            Ok(Version {
                ts: &v.ts,
                hash: &v.hash,
                size: v.size,
                by: &v.by,
                task: v.task.as_ref(),
                chain: store.chain(v.task.as_ref())?,
            })
        })
        .collect()
}

pub(crate) fn as_doc(
    rel: &RelPath,
    versions: &[Version],
    on_disk: Option<&str>,
) -> serde_json::Value {
    let known = on_disk.map(|h| versions.iter().any(|v| v.hash == h));
    json!({ "path": rel, "versions": versions, "on_disk": on_disk, "on_disk_known": known })
}
