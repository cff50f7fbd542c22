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
    let bytes = match std::fs::read(ws.abs(&target)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("{target}: no such file");
            return Ok(1);
        }
        Err(e) => return Err(e).with_context(|| format!("reading {target}")),
    };
    std::io::stdout()
        .write_all(&bytes)
        .context("writing to stdout")?;
    Ok(0)
}
