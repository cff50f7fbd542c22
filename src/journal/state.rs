//! The journal replayed: where every artifact and task stands. Pure: entries in, state
//! out.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use std::borrow::Cow;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::history::History;
use super::{Attribution, Decision, Entry, Output, Reason, Record, Sandbox, Status, TaskId};
use crate::workspace::RelPath;

/// Where a task stands, as the journal tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Dead, and its `fallback` list ends at `human`: it waits for a person to retry,
    /// cancel or resolve it.
    Escalated,
}

impl TaskStatus {
    pub(crate) fn is_final(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Dead)
    }

    /// As the journal and `--json` spell it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Committing => "committing",
            TaskStatus::Failed => "failed",
            TaskStatus::Done => "done",
            TaskStatus::Dead => "dead",
            TaskStatus::Held => "held",
            TaskStatus::Escalated => "escalated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TaskInfo {
    pub(crate) id: TaskId,
    pub(crate) agent: String,
    pub(crate) input: RelPath,
    pub(crate) input_hash: String,
    pub(crate) parent: Option<TaskId>,
    pub(crate) depth: u32,
    pub(crate) reason: Reason,
    pub(crate) refs: Vec<RelPath>,
    /// The writes its delegator narrowed it to; empty: its agent's `writes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) writes: Vec<String>,
    /// When it must be over (RFC 3339), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deadline: Option<String>,
    /// What it and everything beneath it may spend, if bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) budget: Option<f64>,
    /// What its attempts reported spending (`cost` in `result.toml`), in all.
    #[serde(default)]
    pub(crate) cost: f64,
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
    /// How the last attempt's agent was confined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sandbox: Option<Sandbox>,
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
    /// The `seq` of the last record applied to it: a record at or below it is in
    /// already, so a copy read from the store is never moved on twice by one record.
    #[serde(skip)]
    pub(crate) seq: u64,
}

impl TaskInfo {
    /// Whether this task is the fallback that took `dead`'s input over.
    pub(crate) fn fallback_of(&self, dead: &TaskId) -> bool {
        self.reason == Reason::Fallback && self.parent.as_ref() == Some(dead)
    }

    /// The task a `task.queued` entry creates; `None` for any other record.
    pub(crate) fn queued(entry: &Entry) -> Option<TaskInfo> {
        let Record::Queued {
            task,
            agent,
            input,
            input_hash,
            parent,
            depth,
            reason,
            refs,
            writes,
            deadline,
            budget,
            ..
        } = &entry.record
        else {
            return None;
        };
        Some(TaskInfo {
            id: task.clone(),
            agent: agent.clone(),
            input: input.clone(),
            input_hash: input_hash.clone(),
            parent: parent.clone(),
            depth: *depth,
            reason: *reason,
            refs: refs.clone(),
            writes: writes.clone(),
            deadline: deadline.clone(),
            budget: *budget,
            cost: 0.0,
            status: TaskStatus::Queued,
            attempt: 0,
            failures: 0,
            pid: None,
            start_time: None,
            started_ts: None,
            sandbox: None,
            cancelled: false,
            error: None,
            outputs: Vec::new(),
            delegated: Vec::new(),
            result: None,
            queued_ts: entry.ts.clone(),
            updated_ts: entry.ts.clone(),
            duration_ms: None,
            retry_at: None,
            seq: entry.seq,
        })
    }

    /// Moves the task on by one of its own records. The one place task transitions are
    /// written: the in-memory [`State`] and the store both apply records through it.
    pub(crate) fn apply(&mut self, entry: &Entry) {
        if entry.seq <= self.seq {
            return;
        }
        self.seq = entry.seq;
        match &entry.record {
            Record::Queued { .. } => {
                // Requeued (`baton retry`): a fresh retry budget.
                self.status = TaskStatus::Queued;
                self.cancelled = false;
                self.failures = 0;
                self.error = None;
                self.updated_ts = entry.ts.clone();
            }
            Record::Started {
                attempt,
                pid,
                start_time,
                sandbox,
                ..
            } => {
                self.status = TaskStatus::Running;
                self.sandbox = Some(*sandbox);
                self.attempt = *attempt;
                self.pid = Some(*pid);
                self.start_time = Some(*start_time);
                self.started_ts = Some(entry.ts.clone());
                self.updated_ts = entry.ts.clone();
            }
            Record::Committing { outputs, .. } => {
                self.status = TaskStatus::Committing;
                self.outputs = outputs.clone();
            }
            Record::Finished {
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
                self.status = match status {
                    Status::Done => TaskStatus::Done,
                    Status::Failed => TaskStatus::Failed,
                    Status::Dead => TaskStatus::Dead,
                    Status::Held => TaskStatus::Held,
                };
                // An attempt that could not start has no `task.started`: it is an
                // attempt all the same, counted and numbered.
                self.attempt = self.attempt.max(*attempt);
                if matches!(status, Status::Failed | Status::Dead) {
                    self.failures += 1;
                }
                self.outputs = outputs.clone();
                self.delegated = delegated.clone();
                self.error = error.clone();
                self.cost += result
                    .as_ref()
                    .and_then(crate::budget::cost_in)
                    .unwrap_or(0.0);
                self.result = result.clone();
                self.pid = None;
                self.duration_ms = Some(*duration_ms);
                self.updated_ts = entry.ts.clone();
                self.retry_at =
                    retry_in_ms.and_then(|ms| entry.time().map(|t| t + Duration::from_millis(ms)));
            }
            Record::Approval {
                decision, by, note, ..
            } => {
                self.status = match decision {
                    Decision::Approved => TaskStatus::Done,
                    Decision::Rejected => TaskStatus::Dead,
                };
                if *decision == Decision::Rejected {
                    self.error = Some(match note {
                        Some(note) => format!("rejected by {by}: {note}"),
                        None => format!("rejected by {by}"),
                    });
                }
                self.updated_ts = entry.ts.clone();
            }
            Record::Cancelled { by, .. } => {
                // Too late for a task that ended meanwhile.
                if !self.status.is_final() {
                    self.status = TaskStatus::Dead;
                    self.cancelled = true;
                    // `pid` stays: if no daemon stopped the agent, the next one does.
                    self.error = Some(format!("cancelled by {by}"));
                    self.updated_ts = entry.ts.clone();
                }
            }
            Record::Escalated { .. } => {
                if self.status == TaskStatus::Dead && !self.cancelled {
                    self.status = TaskStatus::Escalated;
                    self.updated_ts = entry.ts.clone();
                }
            }
            Record::Resolved { outputs, .. } => {
                if self.status == TaskStatus::Escalated {
                    self.status = TaskStatus::Done;
                    self.outputs = outputs.clone();
                    self.delegated = Vec::new();
                    self.error = None;
                    self.updated_ts = entry.ts.clone();
                }
            }
            Record::Artifact { .. } | Record::Rejected { .. } | Record::ConfigLoaded { .. } => {}
        }
    }
}

/// One task of a delegation chain.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChainLink {
    pub(crate) agent: String,
    pub(crate) input: RelPath,
    pub(crate) task: TaskId,
}

/// The last version of an artifact the journal knows.
#[derive(Debug, Clone, PartialEq)]
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
            Record::ConfigLoaded { hash } => {
                self.config = Some((hash.clone(), entry.ts.clone()));
            }
            Record::Rejected { path, hash, error } => {
                self.rejected.insert(
                    (path.clone(), hash.clone().unwrap_or_default()),
                    error.clone(),
                );
            }
            record => {
                let Some(id) = record.task() else { return };
                match self.tasks.get_mut(id) {
                    Some(info) => info.apply(entry),
                    None => {
                        if let Some(info) = TaskInfo::queued(entry) {
                            self.order.push(info.id.clone());
                            if let Some(parent) = &info.parent {
                                self.children
                                    .entry(parent.clone())
                                    .or_default()
                                    .push(info.id.clone());
                            }
                            self.tasks.insert(info.id.clone(), info);
                        }
                    }
                }
            }
        }
    }
}

impl History for State {
    fn task(&self, id: &TaskId) -> Result<Option<Cow<'_, TaskInfo>>> {
        Ok(self.tasks.get(id).map(Cow::Borrowed))
    }

    fn children(&self, id: &TaskId) -> Result<Vec<TaskInfo>> {
        Ok(self
            .children
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|c| self.tasks.get(c).cloned())
            .collect())
    }

    fn artifact(&self, path: &RelPath) -> Result<Option<ArtifactInfo>> {
        Ok(self.artifacts.get(path).cloned())
    }

    fn rejection(&self, path: &RelPath, hash: &str) -> Result<Option<String>> {
        Ok(self
            .rejected
            .get(&(path.clone(), hash.to_string()))
            .cloned())
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
    fn a_version_is_attributed_only_while_it_is_the_last_one() {
        let mut j = JournalBuilder::new();
        j.artifact("drafts/a.md", "h1", Attribution::human());
        let p = RelPath::new("drafts/a.md").unwrap();
        assert_eq!(
            j.state.attribution_of(&p, "h1").unwrap(),
            Attribution::human()
        );
        j.artifact(
            "drafts/a.md",
            "h2",
            Attribution::agent("w", &TaskId::from("t-1")),
        );
        assert_eq!(
            j.state.attribution_of(&p, "h1").unwrap(),
            Attribution::external()
        );
    }
}
