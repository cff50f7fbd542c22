//! `baton drop FILE [--stage S] [--to A]`: publish a file into a stage atomically, by
//! rename, attributed to `human` in the journal.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::load_config;
use crate::UsageError;
use crate::journal::{Appender, Record};
use crate::lock::{self, Mode};
use crate::workspace::{RelPath, Workspace};
use crate::{frontmatter, publish};

pub fn run(ws: &Workspace, file: &Path, stage: Option<&str>, to: Option<&str>) -> Result<u8> {
    let cfg = load_config(ws)?;
    let stage = match stage {
        Some(s) if cfg.is_stage(s) => s.to_string(),
        Some(s) => return Err(super::no_such_stage(&cfg, s)),
        None => cfg.stages[0].clone(),
    };
    if let Some(agent) = to {
        if !cfg.agents.contains_key(agent) {
            let known = cfg.agents.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(
                UsageError(format!("--to {agent}: no such agent; agents are {known}")).into(),
            );
        }
    }
    let name = file.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        UsageError(format!(
            "{}: not a file name baton can use (UTF-8 expected)",
            file.display()
        ))
    })?;
    let target = RelPath::new(&format!("{stage}/{name}"))?;
    if target.is_ignored() {
        return Err(UsageError(format!(
            "{name}: hidden, `*.tmp`, `*~` and `*.swp` files are never artifacts; rename it first"
        ))
        .into());
    }
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let bytes = match to {
        None => bytes,
        Some(agent) => {
            let text = String::from_utf8(bytes).map_err(|_| {
                UsageError(format!(
                    "--to needs a text file; {} is not UTF-8",
                    file.display()
                ))
            })?;
            frontmatter::with_to(&text, agent)
                .map_err(|e| UsageError(format!("{}: {e}", file.display())))?
                .into_bytes()
        }
    };

    if !publish_as_human(ws, &target, &bytes)? {
        println!("{target} already holds this content; nothing to do");
        return Ok(0);
    }
    match to {
        Some(agent) => println!("dropped {} → {target} (for {agent})", file.display()),
        None => println!("dropped {} → {target}", file.display()),
    }
    Ok(0)
}

/// Publishes `bytes` at `target` atomically, by rename, journalled as written by
/// `human`. Returns false when `target` already holds exactly these bytes.
pub fn publish_as_human(ws: &Workspace, target: &RelPath, bytes: &[u8]) -> Result<bool> {
    publish_as(ws, target, bytes, "human", None)
}

/// Publishes `bytes` at `target` atomically under the path's exclusive lock (unless an
/// enclosing `baton lock` holds it), journalled (fsynced) as written by `by` in `task`
/// before the lock is released, so the daemon's ingest attributes it. Returns false
/// when `target` already holds exactly these bytes.
pub fn publish_as(
    ws: &Workspace,
    target: &RelPath,
    bytes: &[u8],
    by: &str,
    task: Option<&str>,
) -> Result<bool> {
    ws.ensure_state_dirs()?;
    let (staged, hash, size) = publish::stage_copy(ws, &mut &bytes[..])?;
    let _guard = lock::lock_unless_held(ws, target, Mode::Exclusive)?;
    if publish::hash_file(&ws.abs(target)).is_ok_and(|(h, _)| h == hash) {
        let _ = std::fs::remove_file(&staged);
        return Ok(false);
    }
    let dirs = publish::replace(ws, &staged, target)?;
    publish::sync_dirs(&dirs)?;
    let record = Record::Artifact {
        path: target.clone(),
        hash,
        size,
        by: by.into(),
        task: task.map(str::to_string),
    };
    Appender::open_at_end(ws)?.append(vec![record], true)?;
    Ok(true)
}
