//! `baton resolve TASK --file DEST=SRC…`: a person supplies the outputs of a task
//! escalated to `human` (its agents' attempts and fallbacks spent). Each local file SRC
//! becomes the workspace path DEST, committed as `human` in the task's place; the task
//! is done, and what waits for it (its delegator's join, agents triggered by DEST) goes
//! on.

use std::path::PathBuf;

use anyhow::Result;

use crate::error::usage;
use crate::escalation::{self, Supplied};
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, task: &str, files: &[String]) -> Result<u8> {
    let cfg = super::common::config(ws)?;
    let mut supplied = Vec::new();
    for file in files {
        let Some((dest, src)) = file
            .split_once('=')
            .filter(|(d, s)| !d.is_empty() && !s.is_empty())
        else {
            return Err(usage!(
                "`--file {file}`: expected DEST=SRC, the workspace path and the local file, \
                 like `--file drafts/plan.md=./plan.md`"
            ));
        };
        supplied.push(Supplied {
            dest: ws
                .rel_from_user(dest.as_ref())
                .map_err(|e| usage!("`--file {file}`: {e:#}"))?,
            src: PathBuf::from(src),
        });
    }
    let task = escalation::resolve(ws, &cfg, task, &supplied)?;
    let paths: Vec<&str> = task.outputs.iter().map(|o| o.path.as_str()).collect();
    println!(
        "resolved {} ({} on {}): committed {} as human",
        task.id,
        task.agent,
        task.input,
        paths.join(", ")
    );
    Ok(0)
}
