//! `baton write PATH`: stdin → PATH, atomically, under the path's exclusive lock, and
//! attributed in the journal (DESIGN §6): to the agent and task when run inside a task,
//! else to `human`. Unlike an output left in `$BATON_OUT`, it is published at once,
//! which suits a shared artifact several agents update in turn (with `baton lock`).

use std::io::Read;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::error::usage;
use crate::identity::InTask;
use crate::journal::Attribution;
use crate::publish;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, path: &Path) -> Result<u8> {
    let cfg = super::common::config(ws)?;
    let target = ws.rel_from_user(path)?;
    if !cfg.is_artifact(&target) {
        return Err(usage!(
            "{target}: not an artifact path; write into a folder of a stage ({}), and not \
             to a hidden, `*.tmp`, `*~` or `*.swp` name",
            cfg.stages.join(", ")
        ));
    }
    if ws.abs(&target).is_dir() {
        return Err(usage!("{target} is a folder"));
    }
    let who = match InTask::from_env() {
        None => Attribution::human(),
        Some(in_task) => {
            let agent = in_task.agent(&cfg)?;
            if !agent.may_write(&target) {
                return Err(usage!(
                    "{target}: agent `{}` may not write to stage `{}`; its `writes` \
                     in baton.toml are [{}]",
                    agent.name,
                    target.first(),
                    agent.writes.join(", ")
                ));
            }
            if cfg.needs_approval(target.first()) {
                return Err(usage!(
                    "{target}: stage `{}` needs approval, so an agent cannot publish there \
                     directly; write it under $BATON_OUT and it waits for `baton approve`",
                    target.first()
                ));
            }
            Attribution::agent(&agent.name, &in_task.task)
        }
    };
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("reading stdin")?;
    let by = who.by.clone();
    if let publish::Published::New { .. } = publish::publish(ws, &target, &mut &bytes[..], who)? {
        eprintln!("wrote {target} ({} bytes, by {by})", bytes.len());
    } else {
        eprintln!("{target} already holds this content; nothing to do");
    }
    Ok(0)
}
