//! Cleaning up after a daemon that died (DESIGN §4.4): the process groups of agents it
//! left running are stopped (recognised by pid and start time from `task.started`, so a
//! reused pid is never hit), and what they started outside their groups (by the
//! environment it inherited), and commits whose intent was journalled are rolled
//! forward. The interrupted tasks themselves are then queued again by the scheduler.

use anyhow::Result;

use super::context::Ctx;
use super::process;
use crate::journal::{Durability, Finish, Record, TaskInfo, TaskStatus};

pub(crate) fn recover(ctx: &Ctx) -> Result<()> {
    // Started and never journalled as ended: running or committing, or cancelled while
    // no daemon ran.
    let stale: Vec<TaskInfo> = {
        let ledger = ctx.ledger.lock();
        ledger
            .live()
            .filter(|t| matches!(t.status, TaskStatus::Running | TaskStatus::Committing))
            .cloned()
            .chain(ledger.store().cancelled_while_running()?)
            .collect()
    };
    for task in &stale {
        if let (Some(pid), Some(start)) = (task.pid, task.start_time) {
            process::stop_stale_group(pid, start);
        }
    }
    let attempts: Vec<(&str, u32)> = stale.iter().map(|t| (t.id.as_str(), t.attempt)).collect();
    let killed = process::stop_escaped(&ctx.ws.root, &attempts);
    if killed > 0 {
        tracing::info!(
            killed,
            "stopped processes the agents of the daemon that died left running outside their groups"
        );
    }
    let setup = ctx.setup();
    let committer = setup.committer(ctx);
    for task in stale.iter().filter(|t| t.status == TaskStatus::Committing) {
        match committer.roll_forward(task) {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(task = %task.id, "an interrupted commit's staged files are gone; the task runs again");
            }
            // One commit that cannot be finished never keeps the daemon from starting:
            // that task ends dead, saying why; the rest goes on.
            Err(e) => {
                let error = format!("an interrupted commit could not be finished: {e:#}");
                tracing::error!(task = %task.id, "{error}");
                let dead = Record::finished(
                    &task.id,
                    task.attempt,
                    task.duration_ms.unwrap_or(0),
                    Finish::Dead { exit: None, error },
                );
                ctx.ledger.append(vec![dead], Durability::Synced)?;
            }
        }
    }
    Ok(())
}
