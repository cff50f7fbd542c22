//! `baton drop FILE [--stage S] [--to A]`: publish a file into a stage atomically, by
//! rename, attributed to `human` in the journal.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::error::{no_such_stage, unknown_agent, usage};
use crate::journal::Attribution;
use crate::workspace::{RelPath, Workspace};
use crate::{frontmatter, publish};

pub(crate) fn run(
    ws: &Workspace,
    file: &Path,
    stage: Option<&str>,
    to: Option<&str>,
) -> Result<u8> {
    let cfg = super::common::config(ws)?;
    let stage = match stage {
        Some(s) if cfg.is_stage(s) => s.to_string(),
        Some(s) => return Err(no_such_stage(&cfg, s)),
        None => cfg.stages[0].clone(),
    };
    if let Some(agent) = to.filter(|a| !cfg.agents.contains_key(*a)) {
        return Err(unknown_agent(&cfg, "--to", agent));
    }
    let name = file.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        usage!(
            "{}: not a file name baton can use (UTF-8 expected)",
            file.display()
        )
    })?;
    let target = RelPath::new(&format!("{stage}/{name}"))?;
    if target.is_ignored() {
        return Err(usage!(
            "{name}: hidden, `*.tmp`, `*~` and `*.swp` files are never artifacts; rename it first"
        ));
    }
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let bytes = match to {
        None => bytes,
        Some(agent) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| usage!("--to needs a text file; {} is not UTF-8", file.display()))?;
            frontmatter::with_to(&text, agent)
                .map_err(|e| usage!("{}: {e}", file.display()))?
                .into_bytes()
        }
    };

    if !publish::publish(ws, &target, &mut &bytes[..], Attribution::human())? {
        println!("{target} already holds this content; nothing to do");
        return Ok(0);
    }
    match to {
        Some(agent) => println!("dropped {} → {target} (for {agent})", file.display()),
        None => println!("dropped {} → {target}", file.display()),
    }
    Ok(0)
}
