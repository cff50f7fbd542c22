//! `baton delegate --to AGENT PATH [--note TEXT] [--ref PATH…]`: hand PATH to another
//! agent by writing a brief that points at it (DESIGN §7). No content is copied: the
//! brief's front matter names the agent and the paths, its body is the note.
//!
//! Inside a task (`BATON_TASK` set) the brief goes into `$BATON_OUT`, so it is committed
//! only if the delegating agent succeeds, and it carries `reply_to`, so the agent runs
//! again as a join once the work it delegated is settled. Outside a task it is
//! published at once, attributed to `human`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::error::{unknown_agent, usage};
use crate::identity::InTask;
use crate::journal::Attribution;
use crate::publish;
use crate::workspace::{RelPath, Workspace};

pub(crate) fn run(
    ws: &Workspace,
    to: &str,
    path: &Path,
    note: Option<&str>,
    refs: &[PathBuf],
) -> Result<u8> {
    let cfg = super::common::config(ws)?;
    if !cfg.agents.contains_key(to) {
        return Err(unknown_agent(&cfg, "--to", to));
    }
    let in_task = InTask::from_env();
    let out = in_task.as_ref().map(InTask::out).transpose()?;
    let subject = resolve(ws, out, path)?;
    let mut all_refs = vec![subject.clone()];
    for r in refs {
        let r = resolve(ws, out, r)?;
        if !all_refs.contains(&r) {
            all_refs.push(r);
        }
    }
    if let Some(t) = &in_task {
        let allowed = cfg
            .agents
            .get(t.agent_name())
            .and_then(|a| a.delegates_to.as_ref());
        if let Some(allowed) = allowed.filter(|l| !l.iter().any(|a| a == to)) {
            eprintln!(
                "baton delegate: warning: `{}` may delegate only to [{}]; the daemon will refuse this brief (see `baton status`)",
                t.agent_name(),
                allowed.join(", ")
            );
        }
    }

    let mut front = toml::Table::new();
    front.insert("to".into(), to.into());
    front.insert(
        "refs".into(),
        toml::Value::Array(all_refs.iter().map(|r| r.as_str().into()).collect()),
    );
    if let Some(t) = &in_task {
        front.insert("reply_to".into(), t.task.as_str().into());
    }
    let mut text = format!("+++\n{}+++\n", toml::to_string(&front)?);
    if let Some(note) = note {
        text.push_str(note);
        if !note.ends_with('\n') {
            text.push('\n');
        }
    }
    let stage = &cfg.stages[0];
    let stem = Path::new(subject.as_str())
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("brief");
    let tag = &blake3::hash(text.as_bytes()).to_hex()[..8];
    let brief = RelPath::new(&format!("{stage}/{stem}.{to}.{tag}.md"))?;

    match out {
        Some(out) => {
            let file = out.join(brief.as_str());
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&file, &text).with_context(|| format!("writing {}", file.display()))?;
        }
        None => {
            publish::publish(ws, &brief, &mut text.as_bytes(), Attribution::human())?;
        }
    }
    println!("{brief}");
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
    let exists = ws.abs(&rel).is_file() || out.is_some_and(|o| o.join(rel.as_str()).is_file());
    if !exists {
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
