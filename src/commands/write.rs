//! `baton write PATH`: stdin → PATH, atomically, under the path's exclusive lock, and
//! attributed in the journal (DESIGN §6): to the agent and task when run inside a task,
//! else to `human`. Unlike an output left in `$BATON_OUT`, it is published at once,
//! which suits a shared artifact several agents update in turn (with `baton lock`).

use std::io::Read;
use std::path::Path;

use anyhow::{Context as _, Result};

use super::drop::publish_as;
use super::load_config;
use crate::UsageError;
use crate::workspace::Workspace;

pub fn run(ws: &Workspace, path: &Path) -> Result<u8> {
    let cfg = load_config(ws)?;
    let target = ws.rel_from_user(path)?;
    if !cfg.is_artifact(&target) {
        return Err(UsageError(format!(
            "{target}: not an artifact path; write into a folder of a stage ({}), and not \
             to a hidden, `*.tmp`, `*~` or `*.swp` name",
            cfg.stages.join(", ")
        ))
        .into());
    }
    if ws.abs(&target).is_dir() {
        return Err(UsageError(format!("{target} is a folder")).into());
    }
    let task = std::env::var("BATON_TASK").ok().filter(|t| !t.is_empty());
    let (by, task) = match task {
        None => ("human".to_string(), None),
        Some(task) => {
            let agent_name = std::env::var("BATON_AGENT").unwrap_or_default();
            let Some(agent) = cfg.agents.get(&agent_name) else {
                return Err(UsageError(format!(
                    "BATON_TASK is set ({task}) but BATON_AGENT ({agent_name:?}) names no \
                     agent of baton.toml: run inside a task, or unset BATON_TASK"
                ))
                .into());
            };
            if !agent.may_write(&target) {
                return Err(UsageError(format!(
                    "{target}: agent `{agent_name}` may not write to stage `{}`; its `writes` \
                     in baton.toml are [{}]",
                    target.first(),
                    agent.writes.join(", ")
                ))
                .into());
            }
            if cfg.needs_approval(target.first()) {
                return Err(UsageError(format!(
                    "{target}: stage `{}` needs approval, so an agent cannot publish there \
                     directly; write it under $BATON_OUT and it waits for `baton approve`",
                    target.first()
                ))
                .into());
            }
            (agent_name, Some(task))
        }
    };
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("reading stdin")?;
    if publish_as(ws, &target, &bytes, &by, task.as_deref())? {
        eprintln!("wrote {target} ({} bytes, by {by})", bytes.len());
    } else {
        eprintln!("{target} already holds this content; nothing to do");
    }
    Ok(0)
}
