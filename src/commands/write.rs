//! `baton write PATH`: stdin → PATH. Outside a task it is published at once, atomically,
//! under the path's exclusive lock, attributed to `human` in the journal (DESIGN §6).
//! Inside a task (`BATON_TASK` set) it is staged in `$BATON_OUT`, like any output: the
//! daemon commits it, attributed to the task's agent, once the task succeeds. Only the
//! daemon attributes, so an agent cannot pass its writes off as someone else's.

use std::path::Path;

use anyhow::Result;

use crate::act::{self, Actor, Written};
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, path: &Path) -> Result<u8> {
    let cfg = super::common::config(ws)?;
    let target = ws.rel_from_user(path)?;
    let actor = Actor::resolve(&cfg, None)?;
    let mut stdin = std::io::stdin().lock();
    match act::write(ws, &cfg, &actor, &target, &mut stdin, None)? {
        Written::Published { size, .. } => eprintln!("wrote {target} ({size} bytes, by human)"),
        Written::Unchanged { .. } => {
            eprintln!("{target} already holds this content; nothing to do")
        }
        Written::Staged { size, gated, .. } => {
            let gate = if gated {
                ", then waits for `baton approve`"
            } else {
                ""
            };
            let task = actor.task().map(|t| t.as_str()).unwrap_or_default();
            eprintln!(
                "staged {target} ({size} bytes): it is published when task {task} succeeds{gate}"
            );
        }
    }
    Ok(0)
}
