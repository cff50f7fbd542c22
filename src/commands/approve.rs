//! `baton approve TASK [--note TEXT]` and `baton reject TASK --note TEXT`: decide on a
//! task whose outputs are held for a stage with `approval = true` (DESIGN §7).
//!
//! Approving commits the held outputs from the task's staging tree exactly as the
//! daemon commits (intent first, then renames, then the journal), so a crash half-way
//! is rolled forward by the next `baton approve` or daemon start. Rejecting discards
//! them: the task ends dead with the note; the staging tree stays for inspection.

use anyhow::Result;

use super::load_config;
use crate::UsageError;
use crate::daemon::Ctx;
use crate::daemon::{commit, running_daemon};
use crate::journal::{Decision, Record, TaskStatus};
use crate::workspace::Workspace;

pub fn approve(ws: &Workspace, task: &str, note: Option<&str>) -> Result<u8> {
    let ctx = Ctx::offline(ws.clone(), load_config(ws)?)?;
    let task = held_task(&ctx, task, true)?;
    if task.status == TaskStatus::Held {
        let out = ws.attempt_dir(&task.id, task.attempt).join("out");
        if let Some(missing) = task
            .outputs
            .iter()
            .find(|o| !out.join(o.path.as_str()).is_file())
        {
            anyhow::bail!(
                "cannot approve {}: its held output {} is gone from {}; `baton retry {}` runs the task again",
                task.id,
                missing.path,
                out.display(),
                task.id
            );
        }
        let records = vec![
            Record::Approval {
                task: task.id.clone(),
                decision: Decision::Approved,
                by: "human".into(),
                note: note.map(str::to_string),
            },
            Record::Committing {
                task: task.id.clone(),
                attempt: task.attempt,
                outputs: task.outputs.clone(),
            },
        ];
        ctx.append(records, true)?;
    }
    let committing = ctx.ledger().state.tasks[&task.id].clone();
    if !commit::roll_forward(&ctx, &committing)? {
        anyhow::bail!(
            "cannot commit {}: its staged outputs are gone; `baton retry {}` runs the task again",
            task.id,
            task.id
        );
    }
    let paths: Vec<&str> = task.outputs.iter().map(|o| o.path.as_str()).collect();
    println!("approved {}: committed {}", task.id, paths.join(", "));
    Ok(0)
}

pub fn reject(ws: &Workspace, task: &str, note: &str) -> Result<u8> {
    let ctx = Ctx::offline(ws.clone(), load_config(ws)?)?;
    let task = held_task(&ctx, task, false)?;
    let record = Record::Approval {
        task: task.id.clone(),
        decision: Decision::Rejected,
        by: "human".into(),
        note: Some(note.to_string()),
    };
    ctx.append(vec![record], true)?;
    println!(
        "rejected {}: nothing committed; its outputs stay in {}",
        task.id,
        ws.attempt_dir(&task.id, task.attempt).join("out").display()
    );
    Ok(0)
}

/// The task `prefix` names, which must be held (or, for approve, mid-commit after an
/// interrupted approve).
fn held_task(ctx: &Ctx, prefix: &str, committing_ok: bool) -> Result<crate::journal::TaskInfo> {
    let ledger = ctx.ledger();
    let task = ledger
        .state
        .find_task(prefix)
        .map_err(|e| UsageError(e.to_string()))?
        .clone();
    match task.status {
        TaskStatus::Held => Ok(task),
        // An approve interrupted mid-commit; with a daemon running, a commit in progress
        // is the daemon's own.
        TaskStatus::Committing if committing_ok && running_daemon(&ctx.ws).is_none() => Ok(task),
        status => Err(UsageError(format!(
            "{} is {}, not held for approval (held tasks are listed by `baton status`)",
            task.id,
            serde_json::to_value(status)?.as_str().unwrap_or("?")
        ))
        .into()),
    }
}
