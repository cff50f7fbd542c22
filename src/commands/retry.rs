//! `baton retry TASK`: run a task again, with a fresh retry budget. The daemon picks it
//! up from the journal (at once if it runs, else at its next start).

use anyhow::Result;

use crate::UsageError;
use crate::journal::{Appender, Reason, Record, State, TaskStatus};
use crate::workspace::Workspace;

pub fn run(ws: &Workspace, task: &str) -> Result<u8> {
    let mut appender = Appender::open(ws)?;
    let state = State::replay(&appender.poll()?);
    let task = state
        .find_task(task)
        .map_err(|e| UsageError(e.to_string()))?;
    if matches!(
        task.status,
        TaskStatus::Queued | TaskStatus::Running | TaskStatus::Committing
    ) {
        return Err(UsageError(
            format!("{} is {:?} already; nothing to retry", task.id, task.status).to_lowercase(),
        )
        .into());
    }
    let record = Record::Queued {
        task: task.id.clone(),
        agent: task.agent.clone(),
        input: task.input.clone(),
        input_hash: task.input_hash.clone(),
        parent: task.parent.clone(),
        depth: task.depth,
        reason: Reason::Retry,
        refs: task.refs.clone(),
    };
    appender.append(vec![record], true)?;
    println!(
        "queued {} ({} on {}) again",
        task.id, task.agent, task.input
    );
    Ok(0)
}
