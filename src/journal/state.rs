//! The journal replayed: where every artifact and task stands. Pure: entries in, state
//! out.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{Attribution, Decision, Entry, Output, Reason, Record, Status, TaskId};
use crate::workspace::RelPath;

/// Where a task stands, as the journal tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TaskStatus {
    Queued,
    Running,
    /// Outputs are being renamed into place; roll forward on restart.
    Committing,
    /// An attempt failed; another is due after the backoff.
    Failed,
    Done,
    Dead,
    Held,
}

impl TaskStatus {
    pub(crate) fn is_final(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Dead)
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskInfo {
    pub(crate) id: TaskId,
    pub(crate) agent: String,
    pub(crate) input: RelPath,
    pub(crate) input_hash: String,
    pub(crate) parent: Option<TaskId>,
    pub(crate) depth: u32,
    pub(crate) reason: Reason,
    pub(crate) refs: Vec<RelPath>,
    pub(crate) status: TaskStatus,
    /// The last attempt started (0: none yet).
    pub(crate) attempt: u32,
    /// Failed attempts since the task was last queued; `retries` bounds them.
    pub(crate) failures: u32,
    pub(crate) pid: Option<u32>,
    /// The agent process's start time in clock ticks since boot, to recognise it after
    /// a crash; not for people (see `started_ts`).
    #[serde(skip)]
    pub(crate) start_time: Option<u64>,
    /// When the last attempt started (RFC 3339).
    pub(crate) started_ts: Option<String>,
    /// A person cancelled it (`baton cancel`).
    #[serde(skip)]
    pub(crate) cancelled: bool,
    pub(crate) error: Option<String>,
    pub(crate) outputs: Vec<Output>,
    /// Outputs that are delegated briefs (see [`Record::Finished`]).
    pub(crate) delegated: Vec<RelPath>,
    pub(crate) result: Option<serde_json::Value>,
    pub(crate) queued_ts: String,
    pub(crate) updated_ts: String,
    pub(crate) duration_ms: Option<u64>,
    /// For `failed`: when the next attempt is due.
    #[serde(skip)]
    pub(crate) retry_at: Option<SystemTime>,
}

/// One task of a delegation chain.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChainLink<'a> {
    pub(crate) agent: &'a str,
    pub(crate) input: &'a RelPath,
    pub(crate) task: &'a TaskId,
}

/// The last version of an artifact the journal knows.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactInfo {
    pub(crate) hash: String,
    pub(crate) attribution: Attribution,
}

/// The journal replayed: the latest state of every artifact and task.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) artifacts: HashMap<RelPath, ArtifactInfo>,
    pub(crate) tasks: HashMap<TaskId, TaskInfo>,
    /// Task ids in the order they were first queued.
    pub(crate) order: Vec<TaskId>,
    /// Task id → the tasks queued with it as parent, in order.
    pub(crate) children: HashMap<TaskId, Vec<TaskId>>,
    /// Versions already rejected, so a rescan does not report them again.
    pub(crate) rejected: HashMap<(RelPath, String), String>,
    pub(crate) last_seq: u64,
    /// The config the daemon last said it runs: the hash of `baton.toml`, and when.
    pub(crate) config: Option<(String, String)>,
}

impl State {
    pub(crate) fn replay(entries: &[Entry]) -> State {
        let mut state = State::default();
        for entry in entries {
            state.apply(entry);
        }
        state
    }

    pub(crate) fn apply(&mut self, entry: &Entry) {
        self.last_seq = self.last_seq.max(entry.seq);
        match &entry.record {
            Record::Artifact {
                path,
                hash,
                by,
                task,
                ..
            } => {
                self.artifacts.insert(
                    path.clone(),
                    ArtifactInfo {
                        hash: hash.clone(),
                        attribution: Attribution {
                            by: by.clone(),
                            task: task.clone(),
                        },
                    },
                );
            }
            Record::Queued {
                task,
                agent,
                input,
                input_hash,
                parent,
                depth,
                reason,
                refs,
            } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    // Requeued (`baton retry`): a fresh retry budget.
                    info.status = TaskStatus::Queued;
                    info.cancelled = false;
                    info.failures = 0;
                    info.error = None;
                    info.updated_ts = entry.ts.clone();
                    return;
                }
                self.order.push(task.clone());
                if let Some(parent) = parent {
                    self.children
                        .entry(parent.clone())
                        .or_default()
                        .push(task.clone());
                }
                self.tasks.insert(
                    task.clone(),
                    TaskInfo {
                        id: task.clone(),
                        agent: agent.clone(),
                        input: input.clone(),
                        input_hash: input_hash.clone(),
                        parent: parent.clone(),
                        depth: *depth,
                        reason: *reason,
                        refs: refs.clone(),
                        status: TaskStatus::Queued,
                        attempt: 0,
                        failures: 0,
                        pid: None,
                        start_time: None,
                        started_ts: None,
                        cancelled: false,
                        error: None,
                        outputs: Vec::new(),
                        delegated: Vec::new(),
                        result: None,
                        queued_ts: entry.ts.clone(),
                        updated_ts: entry.ts.clone(),
                        duration_ms: None,
                        retry_at: None,
                    },
                );
            }
            Record::Started {
                task,
                attempt,
                pid,
                start_time,
            } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    info.status = TaskStatus::Running;
                    info.attempt = *attempt;
                    info.pid = Some(*pid);
                    info.start_time = Some(*start_time);
                    info.started_ts = Some(entry.ts.clone());
                    info.updated_ts = entry.ts.clone();
                }
            }
            Record::Committing { task, outputs, .. } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    info.status = TaskStatus::Committing;
                    info.outputs = outputs.clone();
                }
            }
            Record::Finished {
                task,
                attempt,
                status,
                outputs,
                error,
                result,
                retry_in_ms,
                duration_ms,
                delegated,
                ..
            } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    info.status = match status {
                        Status::Done => TaskStatus::Done,
                        Status::Failed => TaskStatus::Failed,
                        Status::Dead => TaskStatus::Dead,
                        Status::Held => TaskStatus::Held,
                    };
                    // An attempt that could not start has no `task.started`: it is an
                    // attempt all the same, counted and numbered.
                    info.attempt = info.attempt.max(*attempt);
                    if matches!(status, Status::Failed | Status::Dead) {
                        info.failures += 1;
                    }
                    info.outputs = outputs.clone();
                    info.delegated = delegated.clone();
                    info.error = error.clone();
                    info.result = result.clone();
                    info.pid = None;
                    info.duration_ms = Some(*duration_ms);
                    info.updated_ts = entry.ts.clone();
                    info.retry_at = retry_in_ms
                        .and_then(|ms| entry.time().map(|t| t + Duration::from_millis(ms)));
                }
            }
            Record::Approval {
                task,
                decision,
                by,
                note,
            } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    info.status = match decision {
                        Decision::Approved => TaskStatus::Done,
                        Decision::Rejected => TaskStatus::Dead,
                    };
                    if *decision == Decision::Rejected {
                        info.error = Some(match note {
                            Some(note) => format!("rejected by {by}: {note}"),
                            None => format!("rejected by {by}"),
                        });
                    }
                    info.updated_ts = entry.ts.clone();
                }
            }
            Record::Cancelled { task, by } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    // Too late for a task that ended meanwhile.
                    if !info.status.is_final() {
                        info.status = TaskStatus::Dead;
                        info.cancelled = true;
                        // `pid` stays: if no daemon stopped the agent, the next one does.
                        info.error = Some(format!("cancelled by {by}"));
                        info.updated_ts = entry.ts.clone();
                    }
                }
            }
            Record::ConfigLoaded { hash } => {
                self.config = Some((hash.clone(), entry.ts.clone()));
            }
            Record::Rejected { path, hash, error } => {
                self.rejected.insert(
                    (path.clone(), hash.clone().unwrap_or_default()),
                    error.clone(),
                );
            }
        }
    }

    /// The task `first` and its ancestors, nearest first: the delegation chain. Bounded,
    /// so a corrupt journal with a loop in it cannot hang a reader.
    pub(crate) fn ancestors<'a>(
        &'a self,
        first: Option<&'a TaskId>,
    ) -> impl Iterator<Item = &'a TaskInfo> + 'a {
        let mut at = first;
        std::iter::from_fn(move || {
            let task = self.tasks.get(at?)?;
            at = task.parent.as_ref();
            Some(task)
        })
        .take(10_000)
    }

    /// The tasks that read `path` as their input or wrote it, first queued first.
    pub(crate) fn tasks_touching<'a>(
        &'a self,
        path: &RelPath,
    ) -> impl Iterator<Item = &'a TaskInfo> + use<'a> {
        let path = path.clone();
        self.order
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .filter(move |t| t.input == path || t.outputs.iter().any(|o| o.path == path))
    }

    /// The rejections that still stand: those of the version the journal last saw at
    /// each path. A rejection of an earlier version, fixed since, is not one.
    pub(crate) fn standing_rejections(&self) -> impl Iterator<Item = (&RelPath, &str, &str)> {
        self.rejected.iter().filter_map(|((path, hash), error)| {
            let current = self.artifacts.get(path).is_none_or(|a| a.hash == *hash);
            current.then_some((path, hash.as_str(), error.as_str()))
        })
    }

    /// The delegation chain from task `first` up, nearest first, as task.json and
    /// `baton who --json` show it.
    pub(crate) fn chain<'a>(&'a self, first: Option<&'a TaskId>) -> Vec<ChainLink<'a>> {
        self.ancestors(first)
            .map(|t| ChainLink {
                agent: &t.agent,
                input: &t.input,
                task: &t.id,
            })
            .collect()
    }

    /// Who wrote the version of `path` with content `hash`: the journal's last version
    /// of it if that is the one, else nobody it knows (`external`).
    pub(crate) fn attribution_of(&self, path: &RelPath, hash: &str) -> Attribution {
        match self.artifacts.get(path) {
            Some(a) if a.hash == hash => a.attribution.clone(),
            _ => Attribution::external(),
        }
    }

    /// The one task whose id starts with `prefix` (DESIGN §9: any unique prefix).
    pub(crate) fn find_task(&self, prefix: &str) -> Result<&TaskInfo, FindTaskError> {
        let wanted = prefix.trim();
        let matches: Vec<&TaskInfo> = self
            .order
            .iter()
            .map(TaskId::as_str)
            .filter(|id| {
                id.starts_with(wanted)
                    || id.strip_prefix("t-").is_some_and(|s| s.starts_with(wanted))
            })
            .filter_map(|id| self.tasks.get(id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(FindTaskError::NotFound(prefix.to_string())),
            many => Err(FindTaskError::Ambiguous {
                prefix: prefix.to_string(),
                count: many.len(),
                some: many
                    .iter()
                    .take(4)
                    .map(|t| t.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// Why a TASK argument names no one task.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FindTaskError {
    /// Nothing by that name: exit code 1, as for anything not found.
    #[error("no task matches `{0}` (see `baton status` or `baton log`)")]
    NotFound(String),
    /// More than one: a usage error (exit code 2), give more of the id.
    #[error("`{prefix}` matches {count} tasks ({some}…): give more of the id")]
    Ambiguous {
        prefix: String,
        count: usize,
        some: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::JournalBuilder;

    #[test]
    fn an_attempt_that_could_not_start_is_counted_and_numbered() {
        let mut j = JournalBuilder::new();
        j.queue("t-1", "writer", "briefs/a.md", None);
        j.fail("t-1", 1, Some(100)); // no task.started: the program could not be run
        let t = &j.state.tasks["t-1"];
        assert_eq!(
            (t.status, t.failures, t.attempt),
            (TaskStatus::Failed, 1, 1)
        );
        j.fail("t-1", 2, None);
        let t = &j.state.tasks["t-1"];
        assert_eq!((t.status, t.failures, t.attempt), (TaskStatus::Dead, 2, 2));
    }

    #[test]
    fn replay_counts_failures_and_a_retry_resets_them() {
        let mut j = JournalBuilder::new();
        j.queue("t-1", "writer", "briefs/a.md", None);
        j.start("t-1", 1);
        j.fail("t-1", 1, Some(2000));
        let t = &j.state.tasks["t-1"];
        assert_eq!(
            (t.status, t.failures, t.attempt),
            (TaskStatus::Failed, 1, 1)
        );
        assert!(t.retry_at.is_some());
        j.fail("t-1", 1, None);
        assert_eq!(j.state.tasks["t-1"].status, TaskStatus::Dead);
        j.queue("t-1", "writer", "briefs/a.md", None);
        let t = &j.state.tasks["t-1"];
        assert_eq!((t.status, t.failures), (TaskStatus::Queued, 0));
        assert_eq!(j.state.order, vec![TaskId::from("t-1")]);
    }

    #[test]
    fn a_task_is_found_by_any_unique_prefix() {
        let mut j = JournalBuilder::new();
        j.queue("t-abc1", "writer", "briefs/a.md", None);
        j.queue("t-abd2", "writer", "briefs/b.md", None);
        let s = &j.state;
        assert_eq!(s.find_task("abc").unwrap().id.as_str(), "t-abc1");
        assert_eq!(s.find_task("t-abd").unwrap().id.as_str(), "t-abd2");
        assert!(s.find_task("ab").is_err());
        assert!(s.find_task("zz").is_err());
    }

    #[test]
    fn a_version_is_attributed_only_while_it_is_the_last_one() {
        let mut j = JournalBuilder::new();
        j.artifact("drafts/a.md", "h1", Attribution::human());
        let p = RelPath::new("drafts/a.md").unwrap();
        assert_eq!(j.state.attribution_of(&p, "h1"), Attribution::human());
        j.artifact(
            "drafts/a.md",
            "h2",
            Attribution::agent("w", &TaskId::from("t-1")),
        );
        assert_eq!(j.state.attribution_of(&p, "h1"), Attribution::external());
    }
}
