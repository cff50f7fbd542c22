//! A task escalated to a person (its `fallback` list ends at `human`), resolved by one
//! (`baton resolve`): the files a person supplies are published at the workspace paths
//! they name, attributed to `human` in the task's place, and the task is done. Its
//! delegator's join then counts it like any done task, and the daemon routes the files
//! on as it routes any output.
//!
//! Retrying (`baton retry`) and cancelling (`baton cancel`) an escalated task are the
//! commands' usual records.

use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::config::Config;
use crate::error::usage;
use crate::journal::{
    Attribution, Author, Durability, History, Output, Record, TaskInfo, TaskStatus,
};
use crate::ledger::{Ledger, SharedLedger};
use crate::publish::{Published, publish};
use crate::workspace::{RelPath, Workspace};

/// One file a person supplies: the local file `src` becomes the workspace path `dest`.
#[derive(Debug, Clone)]
pub(crate) struct Supplied {
    pub(crate) dest: RelPath,
    pub(crate) src: PathBuf,
}

/// Resolves the escalated task `prefix` names with `files`; returns it, done, with the
/// outputs as published.
pub(crate) fn resolve(
    ws: &Workspace,
    cfg: &Config,
    prefix: &str,
    files: &[Supplied],
) -> Result<TaskInfo> {
    if std::env::var_os("BATON_TASK").is_some() {
        return Err(usage!(
            "`baton resolve` runs inside a task (BATON_TASK is set): a person resolves an \
             escalated task, not an agent"
        ));
    }
    if files.is_empty() {
        return Err(usage!(
            "give the task's outputs: `--file DEST=SRC`, once per file (SRC a local file, \
             DEST its workspace path)"
        ));
    }
    let ledger = SharedLedger::new(Ledger::open_ringing(ws)?);
    let task = escalated(&ledger, prefix)?;
    // Everything is checked before anything is published.
    let mut sources = Vec::new();
    for (i, f) in files.iter().enumerate() {
        crate::act::check_artifact(ws, cfg, &f.dest)?;
        if files[..i].iter().any(|g| g.dest == f.dest) {
            return Err(usage!("{} is given twice", f.dest));
        }
        let file = File::open(&f.src)
            .with_context(|| format!("cannot read {} (for {})", f.src.display(), f.dest))?;
        if !file.metadata()?.is_file() {
            return Err(usage!("{} is not a file (for {})", f.src.display(), f.dest));
        }
        sources.push(file);
    }
    let who = Attribution {
        by: Author::Human,
        task: Some(task.id.clone()),
    };
    let mut outputs = Vec::new();
    for (f, mut file) in files.iter().zip(sources) {
        let hash = match publish(ws, &f.dest, &mut file, who.clone())? {
            Published::New { hash, .. } | Published::Unchanged { hash } => hash,
            Published::Stale { .. } => unreachable!("no version was expected"),
        };
        outputs.push(Output {
            path: f.dest.clone(),
            hash,
        });
    }
    // Re-read: a person may have retried or cancelled it meanwhile.
    let task = escalated(&ledger, task.id.as_str())?;
    let record = Record::Resolved {
        task: task.id.clone(),
        by: Author::Human,
        outputs: outputs.clone(),
    };
    ledger.append(vec![record], Durability::Synced)?;
    Ok(TaskInfo {
        status: TaskStatus::Done,
        outputs,
        ..task
    })
}

/// The task `prefix` names, if it is escalated; else why it cannot be resolved.
fn escalated(ledger: &SharedLedger, prefix: &str) -> Result<TaskInfo> {
    let mut ledger = ledger.lock();
    ledger.refresh()?;
    let task = ledger.store().find_task(prefix)?;
    let task = ledger
        .task(&task.id)?
        .map_or(task, std::borrow::Cow::into_owned);
    match task.status {
        TaskStatus::Escalated => Ok(task),
        TaskStatus::Dead => Err(usage!(
            "{} is dead, not escalated (its agent's `fallback` list does not end at \
             `human`): `baton retry {}` runs it again",
            task.id,
            task.id
        )),
        status => Err(usage!(
            "{} is {}, not escalated (escalated tasks are listed by `baton status`)",
            task.id,
            status.as_str()
        )),
    }
}
