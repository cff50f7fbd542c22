//! What the rules ask of the past: a task, its children, an artifact's last version, a
//! rejection. Answered by the replayed [`super::State`] (tests, small journals) and by
//! the derived store ([`crate::store`]), so routing, joins and task.json read the same
//! way wherever the journal's state is kept.

use std::borrow::Cow;

use anyhow::Result;

use super::{ArtifactInfo, Attribution, ChainLink, TaskId, TaskInfo};
use crate::workspace::RelPath;

/// Bounds walks up parent links, so a corrupt journal with a loop cannot hang a reader.
const MAX_CHAIN: usize = 10_000;

pub(crate) trait History {
    fn task(&self, id: &TaskId) -> Result<Option<Cow<'_, TaskInfo>>>;

    /// The tasks queued with `id` as their parent, first queued first.
    fn children(&self, id: &TaskId) -> Result<Vec<TaskInfo>>;

    /// The journal's last version of `path`.
    fn artifact(&self, path: &RelPath) -> Result<Option<ArtifactInfo>>;

    /// Why the version `hash` of `path` was rejected, if it was.
    fn rejection(&self, path: &RelPath, hash: &str) -> Result<Option<String>>;

    fn contains_task(&self, id: &TaskId) -> Result<bool> {
        Ok(self.task(id)?.is_some())
    }

    /// The task `first` and its ancestors, nearest first: the delegation chain.
    fn ancestors(&self, first: Option<&TaskId>) -> Result<Vec<TaskInfo>> {
        let mut out: Vec<TaskInfo> = Vec::new();
        let mut at = first.cloned();
        while let Some(id) = at {
            if out.len() >= MAX_CHAIN {
                break;
            }
            let Some(task) = self.task(&id)? else { break };
            let task = task.into_owned();
            at = task.parent.clone();
            out.push(task);
        }
        Ok(out)
    }

    /// The delegation chain from task `first` up, nearest first, as task.json and
    /// `baton who --json` show it.
    fn chain(&self, first: Option<&TaskId>) -> Result<Vec<ChainLink>> {
        Ok(self
            .ancestors(first)?
            .into_iter()
            .map(|t| ChainLink {
                agent: t.agent,
                input: t.input,
                task: t.id,
            })
            .collect())
    }

    /// Who wrote the version of `path` with content `hash`: the journal's last version
    /// of it if that is the one, else nobody it knows (`external`).
    fn attribution_of(&self, path: &RelPath, hash: &str) -> Result<Attribution> {
        Ok(match self.artifact(path)? {
            Some(a) if a.hash == hash => a.attribution,
            _ => Attribution::external(),
        })
    }
}
