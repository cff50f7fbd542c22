//! Advisory locks on artifact paths (DESIGN §6).
//!
//! Each artifact path has a sidecar file under `.baton/locks/`, named by the hash of
//! the path, never deleted: an atomic rename over the artifact replaces its inode, so
//! the lock cannot live on the artifact itself. `flock` is released when the file is
//! closed, including by a crash, so there are no stale locks.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::workspace::{RelPath, Workspace};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Readers: many at once, none while a writer holds it.
    Shared,
    /// Writers and the committer: alone.
    Exclusive,
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct PathLock {
    _file: File,
}

pub fn sidecar(ws: &Workspace, path: &RelPath) -> PathBuf {
    let hash = blake3::hash(path.as_str().as_bytes());
    ws.locks_dir()
        .join(format!("{}.lock", &hash.to_hex()[..32]))
}

fn open_sidecar(ws: &Workspace, path: &RelPath) -> Result<File> {
    let sidecar = sidecar(ws, path);
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&sidecar)
    };
    match open() {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(ws.locks_dir())?;
            open()
        }
        Err(e) => Err(e),
    }
    .with_context(|| format!("opening the lock for {path} ({})", sidecar.display()))
}

/// Blocks until the lock on `path` is held in `mode`.
pub fn lock(ws: &Workspace, path: &RelPath, mode: Mode) -> Result<PathLock> {
    let file = open_sidecar(ws, path)?;
    match mode {
        Mode::Shared => fs4::FileExt::lock_shared(&file),
        Mode::Exclusive => fs4::FileExt::lock(&file),
    }
    .with_context(|| format!("locking {path}"))?;
    Ok(PathLock { _file: file })
}

/// Waits for the shared lock on `path` if its sidecar exists. A missing sidecar means
/// no baton writer ever locked the path (writers create and lock it before their rename
/// makes a file visible), so there is nothing to wait for, and no sidecar is created.
pub fn lock_shared_if_used(ws: &Workspace, path: &RelPath) -> Result<Option<PathLock>> {
    let file = match OpenOptions::new().read(true).open(sidecar(ws, path)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening the lock for {path}")),
    };
    fs4::FileExt::lock_shared(&file).with_context(|| format!("locking {path}"))?;
    Ok(Some(PathLock { _file: file }))
}

/// Takes the lock if nobody holds a conflicting one.
pub fn try_lock(ws: &Workspace, path: &RelPath, mode: Mode) -> Result<Option<PathLock>> {
    let file = open_sidecar(ws, path)?;
    let taken = match mode {
        Mode::Shared => fs4::FileExt::try_lock_shared(&file),
        Mode::Exclusive => fs4::FileExt::try_lock(&file),
    };
    match taken {
        Ok(()) => Ok(Some(PathLock { _file: file })),
        Err(fs4::TryLockError::WouldBlock) => Ok(None),
        Err(fs4::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {path}")),
    }
}
