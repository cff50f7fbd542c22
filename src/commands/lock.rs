//! `baton lock PATH -- CMD…`: runs CMD holding PATH's exclusive lock (DESIGN §6), for a
//! read-modify-write nobody else can interleave with: no commit, `baton write` or
//! `baton read` of PATH gets through until CMD ends. `baton read` and `baton write` of
//! PATH run by CMD itself go ahead (`BATON_LOCKS_HELD` tells them their ancestor holds
//! the lock). Exits with CMD's status.

use std::io::IsTerminal;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::error::usage;
use crate::lock::{self, Mode};
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, path: &Path, command: &[String]) -> Result<u8> {
    let Some((program, args)) = command.split_first() else {
        return Err(usage!("baton lock PATH -- CMD: CMD is missing"));
    };
    let target = ws.rel_from_user(path)?;
    if target.as_str().contains('\n') {
        return Err(usage!("{target:?}: a path with a newline cannot be locked"));
    }
    ws.ensure_state_dirs()?;
    let guard = match lock::try_lock(ws, &target, Mode::Exclusive)? {
        Some(guard) => guard,
        None => {
            if std::io::stderr().is_terminal() {
                eprintln!("waiting for the lock on {target}…");
            }
            lock::lock(ws, &target, Mode::Exclusive)?
        }
    };
    guard
        .keep_across_exec()
        .with_context(|| format!("passing the lock on {target} to {program}"))?;
    let status = Command::new(program)
        .args(args)
        .env(lock::HELD_ENV, lock::held_env_with(ws, &target))
        .status()
        .with_context(|| format!("running {program}"))?;
    drop(guard);
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    })
}
