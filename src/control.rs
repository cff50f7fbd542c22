//! A person steering tasks (`baton retry`, `baton cancel`, and the same buttons of
//! `baton ui`): each decision is one journal record, written as `human`. A running daemon
//! reads it through the journal's doorbell (or at its next start).

use anyhow::Result;

use crate::error::usage;
use crate::journal::{Appender, Author, Durability, Reason, Record, TaskInfo, TaskStatus};
use crate::workspace::Workspace;

/// Queues `task` once more, with a fresh retry budget: a failed, dead, escalated or done
/// task. Returns it as it was.
pub(crate) fn retry(ws: &Workspace, task: TaskInfo) -> Result<TaskInfo> {
    if matches!(
        task.status,
        TaskStatus::Queued | TaskStatus::Running | TaskStatus::Committing
    ) {
        return Err(usage!(
            "{} is {} already; nothing to retry",
            task.id,
            task.status.as_str()
        ));
    }
    let record = Record::requeued(&task, Reason::Retry);
    Appender::open_at_end(ws)?.append(vec![record], Durability::Synced)?;
    Ok(task)
}

/// Ends `task` dead, "cancelled by human": a queued, retrying, running or escalated one
/// (a running daemon stops its agent as at a timeout). Returns it as it was.
pub(crate) fn cancel(ws: &Workspace, task: TaskInfo) -> Result<TaskInfo> {
    match task.status {
        TaskStatus::Queued | TaskStatus::Failed | TaskStatus::Running | TaskStatus::Escalated => {}
        TaskStatus::Held => {
            return Err(usage!(
                "{} is held for approval: `baton reject {} --note …` discards its outputs",
                task.id,
                task.id
            ));
        }
        TaskStatus::Committing => {
            return Err(usage!(
                "{} is committing its outputs; it is too late to cancel",
                task.id
            ));
        }
        TaskStatus::Done | TaskStatus::Dead => {
            return Err(usage!(
                "{} is {} already; nothing to cancel",
                task.id,
                task.status.as_str()
            ));
        }
    }
    let record = Record::Cancelled {
        task: task.id.clone(),
        by: Author::Human,
    };
    Appender::open_at_end(ws)?.append(vec![record], Durability::Synced)?;
    Ok(task)
}
