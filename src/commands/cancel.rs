//! `baton cancel TASK|PATH`: a queued, retrying, running or escalated task ends dead,
//! "cancelled by human". A running daemon stops the agent's process group as at a
//! timeout.

use anyhow::Result;

use super::common::find_task_or_path;
use crate::journal::TaskStatus;
use crate::pidfile::running_daemon;
use crate::store::Store;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, target: &str) -> Result<u8> {
    let store = Store::open(ws)?;
    let task = crate::control::cancel(ws, find_task_or_path(ws, &store, target)?)?;
    println!("cancelled {} ({} on {})", task.id, task.agent, task.input);
    if task.status == TaskStatus::Running {
        match running_daemon(ws) {
            Some(_) => println!("  the daemon stops its agent, as at a timeout"),
            None => println!("  no daemon runs: the next one stops what is left of its agent"),
        }
    }
    Ok(0)
}
