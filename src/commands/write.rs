//! `baton write PATH`: stdin → PATH. Outside a task it is published at once, atomically,
//! under the path's exclusive lock, attributed to `human` in the journal (DESIGN §6).
//! Inside a task (`BATON_TASK` set) it is staged in `$BATON_OUT`, like any output: the
//! daemon commits it, attributed to the task's agent, once the task succeeds. Only the
//! daemon attributes, so an agent cannot pass its writes off as someone else's.

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
    let Some(in_task) = InTask::from_env() else {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading stdin")?;
        match publish::publish(ws, &target, &mut &bytes[..], Attribution::human())? {
            publish::Published::New { .. } => {
                eprintln!("wrote {target} ({} bytes, by human)", bytes.len())
            }
            _ => eprintln!("{target} already holds this content; nothing to do"),
        }
        return Ok(0);
    };
    // Inside a task it is staged, and the daemon's commit publishes and attributes it
    // once the task succeeds: a sandboxed agent can write nowhere else.
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
    let base = publish::hash_artifact(ws, &target)
        .ok()
        .map(|(hash, _)| hash);
    in_task.note_base(&target, base.as_deref())?;
    let n = in_task.stage(&target, &mut std::io::stdin().lock())?;
    let gate = if cfg.needs_approval(target.first()) {
        ", then waits for `baton approve`"
    } else {
        ""
    };
    eprintln!(
        "staged {target} ({n} bytes): it is published when task {} succeeds{gate}",
        in_task.task
    );
    Ok(0)
}
