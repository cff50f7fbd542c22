//! Deciding on a task held at an approval gate (DESIGN §7), whichever process decides:
//! approving commits the held outputs from the task's staging tree exactly as the
//! daemon commits (intent first, then renames, then the journal), so a crash half-way is
//! rolled forward by the next approve or daemon start; rejecting ends the task dead with
//! a note, its outputs left in the staging tree.
//!
//! Only the daemon queues what the committed outputs route to; it reads these records
//! through the journal's doorbell (or at its next start).

use anyhow::{Context as _, Result, bail};

use crate::commit::Committer;
use crate::config::Config;
use crate::error::usage;
use crate::journal::{Author, Decision, Durability, History, Record, TaskInfo, TaskStatus};
use crate::ledger::{Ledger, SharedLedger};
use crate::pidfile::running_daemon;
use crate::workspace::Workspace;

/// Approves the held task `prefix` names; returns it as it was held.
pub(crate) fn approve(
    ws: &Workspace,
    cfg: &Config,
    prefix: &str,
    note: Option<&str>,
) -> Result<TaskInfo> {
    let ledger = SharedLedger::new(Ledger::open_ringing(ws)?);
    let task = held_task(ws, &ledger, prefix, Accept::HeldOrCommitting)?;
    if task.status == TaskStatus::Held {
        let out = ws.attempt_dir(task.id.as_str(), task.attempt).join("out");
        if let Some(missing) = task
            .outputs
            .iter()
            .find(|o| !out.join(o.path.as_str()).is_file())
        {
            bail!(
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
                by: Author::Human,
                note: note.map(str::to_string),
            },
            Record::Committing {
                task: task.id.clone(),
                attempt: task.attempt,
                outputs: task.outputs.clone(),
            },
        ];
        ledger.append(records, Durability::Synced)?;
    }
    let committing = ledger
        .lock()
        .task(&task.id)?
        .map(std::borrow::Cow::into_owned)
        .with_context(|| format!("{} is not in the journal", task.id))?;
    let committer = Committer {
        ws,
        cfg,
        ledger: &ledger,
        index: None,
    };
    if !committer.roll_forward(&committing)? {
        bail!(
            "cannot commit {}: its staged outputs are gone; `baton retry {}` runs the task again",
            task.id,
            task.id
        );
    }
    Ok(task)
}

/// Rejects the held task `prefix` names with `note`; returns it.
pub(crate) fn reject(ws: &Workspace, prefix: &str, note: &str) -> Result<TaskInfo> {
    let ledger = SharedLedger::new(Ledger::open_ringing(ws)?);
    let task = held_task(ws, &ledger, prefix, Accept::Held)?;
    let record = Record::Approval {
        task: task.id.clone(),
        decision: Decision::Rejected,
        by: Author::Human,
        note: Some(note.to_string()),
    };
    ledger.append(vec![record], Durability::Synced)?;
    Ok(task)
}

/// Which states a decision takes.
#[derive(Clone, Copy, PartialEq)]
enum Accept {
    Held,
    /// Also a task mid-commit after an interrupted approve, with no daemon running (with
    /// one, a commit in progress is the daemon's own).
    HeldOrCommitting,
}

fn held_task(
    ws: &Workspace,
    ledger: &SharedLedger,
    prefix: &str,
    accept: Accept,
) -> Result<TaskInfo> {
    let ledger = ledger.lock();
    let task = ledger.store().find_task(prefix)?;
    match task.status {
        TaskStatus::Held => Ok(task),
        TaskStatus::Committing
            if accept == Accept::HeldOrCommitting && running_daemon(ws).is_none() =>
        {
            Ok(task)
        }
        status => Err(usage!(
            "{} is {}, not held for approval (held tasks are listed by `baton status`)",
            task.id,
            serde_json::to_value(status)?.as_str().unwrap_or("?")
        )),
    }
}
