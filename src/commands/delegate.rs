//! `baton delegate --to AGENT PATH [--note TEXT] [--ref PATH…]`: hand PATH to another
//! agent by writing a brief that points at it (DESIGN §7). No content is copied: the
//! brief's front matter names the agent and the paths, its body is the note.
//!
//! Inside a task (`BATON_TASK` set) the brief goes into `$BATON_OUT`, so it is committed
//! only if the delegating agent succeeds, and it carries `reply_to`, so the agent runs
//! again as a join once the work it delegated is settled. Outside a task it is
//! published at once, attributed to `human`. The work is [`crate::act::delegate`].

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::act::{self, Actor, Delegation};
use crate::error::{unknown_agent, usage};
use crate::workspace::{RelPath, Workspace};

/// What the delegator asks besides the agent and the path.
pub(crate) struct Asked<'a> {
    pub(crate) note: Option<&'a str>,
    pub(crate) refs: &'a [PathBuf],
    pub(crate) writes: &'a [String],
    pub(crate) deadline: Option<&'a str>,
    pub(crate) budget: Option<&'a str>,
}

pub(crate) fn run(ws: &Workspace, to: &str, path: &Path, asked: Asked) -> Result<u8> {
    let Asked {
        note,
        refs,
        writes,
        deadline,
        budget,
    } = asked;
    let cfg = super::common::config(ws)?;
    if !cfg.agents.contains_key(to) {
        return Err(unknown_agent(&cfg, "--to", to));
    }
    let actor = Actor::resolve(&cfg, None)?;
    let out = actor.out();
    let subject = resolve(ws, out, path)?;
    let refs = refs
        .iter()
        .map(|r| resolve(ws, out, r))
        .collect::<Result<Vec<_>>>()?;
    if let Err(e) = act::delegation_allowed(&cfg, &actor, to) {
        eprintln!("baton delegate: warning: {e}; see `baton status` once it is committed");
    }
    let delegation = Delegation {
        to,
        subject,
        refs,
        note,
        idempotency_key: None,
        writes,
        deadline,
        budget: budget
            .map(|b| crate::budget::parse(&toml::Value::String(b.to_string())))
            .transpose()
            .map_err(|e| usage!("--budget: {e}"))?,
    };
    let done = act::delegate(ws, &cfg, &actor, delegation)?;
    println!("{}", done.brief);
    Ok(0)
}

/// A path given on the command line, as a workspace path that exists in the workspace
/// or, inside a task, in its staging tree (an output not committed yet).
fn resolve(ws: &Workspace, out: Option<&Path>, path: &Path) -> Result<RelPath> {
    let staged = out.and_then(|out| {
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(path)
        };
        abs.strip_prefix(out).ok().map(Path::to_path_buf)
    });
    let rel = match staged {
        Some(inside_out) => RelPath::from_path(&inside_out),
        None => ws.rel_from_user(path),
    }
    .map_err(|e| usage!("{e:#}"))?; // each error names the path already
    if !act::exists(ws, out, &rel) {
        return Err(usage!(
            "{}: no such file in the workspace{}",
            path.display(),
            if out.is_some() {
                " or in $BATON_OUT"
            } else {
                ""
            }
        ));
    }
    Ok(rel)
}
