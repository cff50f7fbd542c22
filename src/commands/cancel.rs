//! `baton cancel TASK|PATH`: a queued, retrying or running task ends dead, "cancelled by
//! human". A running daemon stops the agent's process group as at a timeout.

use anyhow::Result;

use super::common::find_task_or_path;
use crate::error::usage;
use crate::journal::{Appender, Author, Durability, Record, TaskStatus};
use crate::pidfile::running_daemon;
use crate::store::Store;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, target: &str) -> Result<u8> {
    let store = Store::open(ws)?;
    let task = find_task_or_path(ws, &store, target)?;
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
            let status = serde_json::to_value(task.status)?;
            return Err(usage!(
                "{} is {} already; nothing to cancel",
                task.id,
                status.as_str().unwrap_or("?")
            ));
        }
    }
    let record = Record::Cancelled {
        task: task.id.clone(),
        by: Author::Human,
    };
    Appender::open_at_end(ws)?.append(vec![record], Durability::Synced)?;
    println!("cancelled {} ({} on {})", task.id, task.agent, task.input);
    if task.status == TaskStatus::Running {
        match running_daemon(ws) {
            Some(_) => println!("  the daemon stops its agent, as at a timeout"),
            None => println!("  no daemon runs: the next one stops what is left of its agent"),
        }
    }
    Ok(0)
}
