//! A version read from disk, routed: bad front matter and bad `refs` become `rejected`
//! records; otherwise [`super::rules`] decide. Shared by the daemon's ingest, its commit
//! and `baton approve`, so a version is routed the same way however it arrived.

use std::path::Path;

use anyhow::{Result, bail};

use super::rules::{Arrival, route};
use crate::config::Config;
use crate::frontmatter::{FrontMatter, FrontMatterError};
use crate::journal::{Record, State, TaskId};
use crate::workspace::{RelPath, Workspace, lexical_normalise};

/// A version of an artifact that became visible.
pub(crate) struct Version<'a> {
    pub(crate) path: &'a RelPath,
    pub(crate) hash: &'a str,
    /// The task whose commit (or `baton write`) published it, if any.
    pub(crate) producer: Option<&'a TaskId>,
    pub(crate) front: Result<Option<FrontMatter>, FrontMatterError>,
}

/// What to journal for a journalled version: its tasks, or why none. Nothing for a
/// version rejected before (a rescan does not report it twice).
pub(crate) fn route_version(
    ws: &Workspace,
    cfg: &Config,
    state: &State,
    version: Version,
) -> Vec<Record> {
    let Version {
        path,
        hash,
        producer,
        front,
    } = version;
    if state
        .rejected
        .contains_key(&(path.clone(), hash.to_string()))
    {
        return Vec::new();
    }
    let reject = |error: String| {
        vec![Record::Rejected {
            path: path.clone(),
            hash: Some(hash.to_string()),
            error,
        }]
    };
    let front = match front {
        Err(e) => return reject(e.to_string()),
        Ok(front) => front.unwrap_or_default(),
    };
    let refs = match resolve_refs(ws, path, &front.refs) {
        Ok(refs) => refs,
        Err(error) => return reject(error),
    };
    let delegation = producer.is_some_and(|p| front.reply_to.as_deref() == Some(p.as_str()));
    route(
        cfg,
        state,
        &Arrival {
            path,
            hash,
            producer,
            to: front.to.as_deref(),
            delegation,
            refs: &refs,
        },
    )
}

/// Front-matter `refs` as workspace paths: each must exist and stay inside the
/// workspace. `./` and `../` are taken from the artifact's folder, anything else from
/// the workspace root.
pub(crate) fn resolve_refs(
    ws: &Workspace,
    artifact: &RelPath,
    refs: &[String],
) -> Result<Vec<RelPath>, String> {
    refs.iter()
        .map(|r| {
            let rel = resolve_ref(ws, artifact, r).map_err(|e| format!("refs: `{r}`: {e}"))?;
            let abs = ws.abs(&rel);
            let real = abs
                .canonicalize()
                .map_err(|_| format!("refs: `{r}` ({rel}) does not exist"))?;
            if !real.starts_with(&ws.root) {
                return Err(format!(
                    "refs: `{r}` leads outside the workspace (through a symlink)"
                ));
            }
            Ok(rel)
        })
        .collect()
}

fn resolve_ref(ws: &Workspace, artifact: &RelPath, r: &str) -> Result<RelPath> {
    let r = r.trim();
    if let Ok(inside) = Path::new(r).strip_prefix(&ws.root) {
        return RelPath::from_path(inside);
    }
    if !(r.starts_with("./") || r.starts_with("../")) {
        return RelPath::new(r);
    }
    let folder = ws.root.join(artifact.parent());
    match lexical_normalise(&folder.join(r)).strip_prefix(&ws.root) {
        Ok(inside) => RelPath::from_path(inside),
        Err(_) => bail!("climbs out of the workspace"),
    }
}
