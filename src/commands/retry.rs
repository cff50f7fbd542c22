//! `baton retry TASK`: run a task again, with a fresh retry budget. The daemon picks it
//! up from the journal (at once if it runs, else at its next start).

use anyhow::Result;

use super::common::find_task;
use crate::error::usage;
use crate::journal::{Appender, Durability, Reason, Record, TaskStatus};
use crate::store::Store;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, task: &str) -> Result<u8> {
    let store = Store::open(ws)?;
    let task = find_task(&store, task)?;
    if matches!(
        task.status,
        TaskStatus::Queued | TaskStatus::Running | TaskStatus::Committing
    ) {
        return Err(usage!(
            "{}",
            format!("{} is {:?} already; nothing to retry", task.id, task.status).to_lowercase()
        ));
    }
    let record = Record::requeued(&task, Reason::Retry);
    Appender::open_at_end(ws)?.append(vec![record], Durability::Synced)?;
    println!(
        "queued {} ({} on {}) again",
        task.id, task.agent, task.input
    );
    Ok(0)
}
