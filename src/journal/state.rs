//! The journal replayed: where every artifact and task stands. Pure: entries in, state
//! out.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde::Serialize;

use super::{Decision, Entry, Output, Reason, Record, Status};
use crate::workspace::RelPath;

/// Where a task stands, as the journal tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
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
    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Dead)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub id: String,
    pub agent: String,
    pub input: RelPath,
    pub input_hash: String,
    pub parent: Option<String>,
    pub depth: u32,
    pub reason: Reason,
    pub refs: Vec<RelPath>,
    pub status: TaskStatus,
    /// The last attempt started (0: none yet).
    pub attempt: u32,
    /// Failed attempts since the task was last queued; `retries` bounds them.
    pub failures: u32,
    pub pid: Option<u32>,
    pub start_time: Option<u64>,
    pub error: Option<String>,
    pub outputs: Vec<Output>,
    /// Outputs that are delegated briefs (see [`Record::Finished`]).
    pub delegated: Vec<RelPath>,
    pub result: Option<serde_json::Value>,
    pub queued_ts: String,
    pub updated_ts: String,
    pub duration_ms: Option<u64>,
    /// For `failed`: when the next attempt is due.
    #[serde(skip)]
    pub retry_at: Option<SystemTime>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactInfo {
    pub hash: String,
    pub size: u64,
    pub by: String,
    pub task: Option<String>,
    pub ts: String,
}

/// The journal replayed: the latest state of every artifact and task.
#[derive(Debug, Default)]
pub struct State {
    pub artifacts: HashMap<RelPath, ArtifactInfo>,
    pub tasks: HashMap<String, TaskInfo>,
    /// Task ids in the order they were first queued.
    pub order: Vec<String>,
    /// Task id → the tasks queued with it as parent, in order.
    pub children: HashMap<String, Vec<String>>,
    /// Versions already rejected, so a rescan does not report them again.
    pub rejected: HashMap<(RelPath, String), String>,
    pub last_seq: u64,
}

impl State {
    pub fn replay(entries: &[Entry]) -> State {
        let mut state = State::default();
        for entry in entries {
            state.apply(entry);
        }
        state
    }

    pub fn apply(&mut self, entry: &Entry) {
        self.last_seq = self.last_seq.max(entry.seq);
        match &entry.record {
            Record::Artifact {
                path,
                hash,
                size,
                by,
                task,
            } => {
                self.artifacts.insert(
                    path.clone(),
                    ArtifactInfo {
                        hash: hash.clone(),
                        size: *size,
                        by: by.clone(),
                        task: task.clone(),
                        ts: entry.ts.clone(),
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
                    if matches!(status, Status::Failed | Status::Dead) && info.attempt > 0 {
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
    pub fn ancestors<'a>(
        &'a self,
        first: Option<&'a str>,
    ) -> impl Iterator<Item = &'a TaskInfo> + 'a {
        let mut at = first;
        std::iter::from_fn(move || {
            let task = self.tasks.get(at?)?;
            at = task.parent.as_deref();
            Some(task)
        })
        .take(10_000)
    }

    /// The one task whose id starts with `prefix` (DESIGN §9: any unique prefix).
    pub fn find_task(&self, prefix: &str) -> Result<&TaskInfo> {
        let wanted = prefix.trim();
        let matches: Vec<&TaskInfo> = self
            .order
            .iter()
            .filter(|id| {
                id.starts_with(wanted)
                    || id.strip_prefix("t-").is_some_and(|s| s.starts_with(wanted))
            })
            .filter_map(|id| self.tasks.get(id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => anyhow::bail!("no task matches `{prefix}` (see `baton status` or `baton log`)"),
            many => anyhow::bail!(
                "`{prefix}` matches {} tasks ({}…): give more of the id",
                many.len(),
                many.iter()
                    .take(4)
                    .map(|t| t.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}
