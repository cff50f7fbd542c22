//! A version read from disk, routed: bad front matter and bad `refs` become `rejected`
//! records; otherwise [`super::rules`] decide. Shared by the daemon's ingest, its commit
//! and `baton approve`, so a version is routed the same way however it arrived.

use std::path::Path;

use anyhow::{Result, bail};

use super::rules::{Arrival, route, unknown_to};
use crate::config::Config;
use crate::frontmatter::{FrontMatter, FrontMatterError};
use crate::journal::{History, Record, TaskId};
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
    state: &dyn History,
    version: Version,
) -> Result<Vec<Record>> {
    let Version {
        path,
        hash,
        producer,
        front,
    } = version;
    if state.rejection(path, hash)?.is_some() {
        return Ok(Vec::new());
    }
    let reject = |error: String| {
        vec![Record::Rejected {
            path: path.clone(),
            hash: Some(hash.to_string()),
            error,
        }]
    };
    let (front, refs) = match readable(ws, path, front) {
        Ok(read) => read,
        Err(error) => return Ok(reject(error)),
    };
    let delegation = producer.is_some_and(|p| front.reply_to.as_deref() == Some(p.as_str()));
    let now = std::time::SystemTime::now();
    let deadline = match front
        .deadline
        .as_deref()
        .map(|d| crate::deadline::parse(d, now))
    {
        None => None,
        Some(Ok(at)) => Some(at),
        Some(Err(e)) => return Ok(reject(format!("front matter `deadline`: {e}"))),
    };
    let budget = match front.budget.as_ref().map(crate::budget::parse) {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => return Ok(reject(format!("front matter `budget`: {e}"))),
    };
    let routed = route(
        cfg,
        state,
        &Arrival {
            path,
            hash,
            producer,
            to: front.to.as_deref(),
            delegation,
            refs: &refs,
            writes: front.writes.as_deref().unwrap_or_default(),
            deadline,
            arrived: now,
            budget,
        },
    )?;
    for record in &routed {
        if let Record::Rejected { path, error, .. } = record {
            tracing::warn!(%path, error, "rejected");
        }
    }
    Ok(routed)
}

/// The front matter and resolved `refs` of a version at `path`, or why it is rejected.
fn readable(
    ws: &Workspace,
    path: &RelPath,
    front: Result<Option<FrontMatter>, FrontMatterError>,
) -> Result<(FrontMatter, Vec<RelPath>), String> {
    let front = front.map_err(|e| e.to_string())?.unwrap_or_default();
    let refs = resolve_refs(ws, path, &front.refs)?;
    Ok((front, refs))
}

/// What the daemon would reject of a version with front matter `front` at `path`, from
/// a person (`baton drop`): bad front matter, bad `refs`, or a `to` that names no agent.
/// On success, whether any agent takes it (by `to`, or a glob).
pub(crate) fn check_from_person(
    ws: &Workspace,
    cfg: &Config,
    path: &RelPath,
    front: Result<Option<FrontMatter>, FrontMatterError>,
) -> Result<Takers, String> {
    let (front, _) = readable(ws, path, front)?;
    match front.to {
        Some(agent) if cfg.agents.contains_key(&agent) => Ok(Takers::Some),
        Some(agent) => Err(unknown_to(cfg, &agent)),
        None if cfg.agents.values().any(|a| a.triggered_by(path)) => Ok(Takers::Some),
        None => Ok(Takers::None),
    }
}

/// Whether a version starts any agent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Takers {
    Some,
    /// No agent's `on` matches it and it names none: it starts nothing.
    None,
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
