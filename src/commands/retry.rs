//! `baton retry TASK`: run a task again, with a fresh retry budget. The daemon picks it
//! up from the journal (at once if it runs, else at its next start).

use anyhow::Result;

use super::common::find_task;
use crate::store::Store;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, task: &str) -> Result<u8> {
    let store = Store::open(ws)?;
    let task = crate::control::retry(ws, find_task(&store, task)?)?;
    println!(
        "queued {} ({} on {}) again",
        task.id, task.agent, task.input
    );
    Ok(0)
}
