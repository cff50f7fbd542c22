//! The daemon lock (DESIGN §4.5): one daemon per workspace. `.baton/daemon.lock` is
//! `flock`ed by the running daemon and holds its pid, for the error a second one prints
//! and for commands that ask whether a daemon runs. An flock dies with its process, so
//! a crashed daemon leaves no stale lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};

use anyhow::{Context as _, Result, bail};

use crate::workspace::Workspace;

/// Held by the one running daemon of a workspace; released on exit or crash.
pub(crate) struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    /// Takes the lock, or fails naming the daemon that holds it.
    pub(crate) fn acquire(ws: &Workspace) -> Result<DaemonLock> {
        let path = ws.daemon_lock_path();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let pid = read_pid(&mut file).map_or("unknown".into(), |p| p.to_string());
                bail!(
                    "a daemon is already running on {} (pid {pid}); stop it first, or use `baton status`",
                    ws.root.display()
                );
            }
            Err(fs4::TryLockError::Error(e)) => return Err(e).context("locking the daemon lock"),
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        Ok(DaemonLock { _file: file })
    }
}

/// The pid of the daemon running on `ws`, if one is.
pub(crate) fn running_daemon(ws: &Workspace) -> Option<u32> {
    let mut file = File::open(ws.daemon_lock_path()).ok()?;
    match fs4::FileExt::try_lock_shared(&file) {
        Ok(()) => None,
        Err(_) => read_pid(&mut file),
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
