//! `baton read PATH`: PATH to stdout under the path's shared lock (DESIGN §6), so a
//! reader never sees a version that `baton write`, `baton lock` or a commit is about to
//! replace.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::lock::{self, Mode};
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, path: &Path) -> Result<u8> {
    let target = ws.rel_from_user(path)?;
    let _guard = lock::lock_unless_held(ws, &target, Mode::Shared)?;
    // Beneath the workspace with no symlink followed: a link to a file outside is
    // refused, and so is a FIFO or device.
    let opened = match crate::beneath::open(&ws.root, &target) {
        Ok(opened) => opened,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("{target}: no such file");
            return Ok(1);
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("error: {e}; nothing was read");
            return Ok(1);
        }
        Err(e) => return Err(e).with_context(|| format!("reading {target}")),
    };
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut opened.reader(), &mut out).with_context(|| format!("reading {target}"))?;
    out.flush().context("writing to stdout")?;
    Ok(0)
}
