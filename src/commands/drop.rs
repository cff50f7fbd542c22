//! `baton drop FILE [--stage S] [--to A]`: publish a file into a stage atomically, by
//! rename, attributed to `human` in the journal.

use std::io::Read;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::error::{no_such_stage, unknown_agent, usage};
use crate::frontmatter::HEAD_BYTES;
use crate::journal::Attribution;
use crate::route::{self, Takers};
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
    let mut source =
        std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    // The head, for the checks the daemon makes; the rest is copied as it is read.
    let mut head = Vec::new();
    (&mut source)
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {}", file.display()))?;
    if let Some(agent) = to {
        source
            .read_to_end(&mut head)
            .with_context(|| format!("reading {}", file.display()))?;
        let text = String::from_utf8(head)
            .map_err(|_| usage!("--to needs a text file; {} is not UTF-8", file.display()))?;
        head = frontmatter::with_to(&text, agent)
            .map_err(|e| usage!("{}: {e}", file.display()))?
            .into_bytes();
    }
    let takers = route::check_from_person(ws, &cfg, &target, frontmatter::from_head(&head))
        .map_err(|e| usage!("{}: {e}; nothing was dropped", file.display()))?;
    let mut content = std::io::Cursor::new(head).chain(source);
    if !publish::publish(ws, &target, &mut content, Attribution::human())? {
        println!("{target} already holds this content; nothing to do");
        return Ok(0);
    }
    match to {
        Some(agent) => println!("dropped {} → {target} (for {agent})", file.display()),
        None => println!("dropped {} → {target}", file.display()),
    }
    if takers == Takers::None {
        eprintln!(
            "baton: warning: no agent's `on` matches {target}, and it names none with `to`: it starts nothing"
        );
    }
    Ok(0)
}
