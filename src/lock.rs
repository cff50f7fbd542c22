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
pub(crate) enum Mode {
    /// Readers: many at once, none while a writer holds it.
    Shared,
    /// Writers and the committer: alone.
    Exclusive,
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct PathLock {
    file: File,
}

impl PathLock {
    /// Lets the programs this process starts inherit the lock: a `flock` belongs to the
    /// open file, so it is then released only when this process and they have all
    /// closed it. `baton lock` uses it so a CMD outliving a killed `baton lock` is
    /// still covered.
    pub(crate) fn keep_across_exec(&self) -> std::io::Result<()> {
        crate::sys::keep_across_exec(&self.file)
    }
}

pub(crate) fn sidecar(ws: &Workspace, path: &RelPath) -> PathBuf {
    let hash = blake3::hash(path.as_str().as_bytes());
    ws.locks_dir()
        .join(format!("{}.lock", &hash.to_hex()[..32]))
}

fn open_sidecar(ws: &Workspace, path: &RelPath) -> Result<File> {
    let sidecar = sidecar(ws, path);
    let open = || {
        use std::os::unix::fs::OpenOptionsExt;
        // Not followed: sandboxed agents may make lock files, and so could plant a link.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
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
pub(crate) fn lock(ws: &Workspace, path: &RelPath, mode: Mode) -> Result<PathLock> {
    let file = open_sidecar(ws, path)?;
    match mode {
        Mode::Shared => fs4::FileExt::lock_shared(&file),
        Mode::Exclusive => fs4::FileExt::lock(&file),
    }
    .with_context(|| format!("locking {path}"))?;
    Ok(PathLock { file })
}

/// Waits for the shared lock on `path` if its sidecar exists. A missing sidecar means
/// no baton writer ever locked the path (writers create and lock it before their rename
/// makes a file visible), so there is nothing to wait for, and no sidecar is created.
pub(crate) fn lock_shared_if_used(ws: &Workspace, path: &RelPath) -> Result<Option<PathLock>> {
    let file = match OpenOptions::new().read(true).open(sidecar(ws, path)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening the lock for {path}")),
    };
    fs4::FileExt::lock_shared(&file).with_context(|| format!("locking {path}"))?;
    Ok(Some(PathLock { file }))
}

/// Takes the lock if nobody holds a conflicting one.
pub(crate) fn try_lock(ws: &Workspace, path: &RelPath, mode: Mode) -> Result<Option<PathLock>> {
    let file = open_sidecar(ws, path)?;
    let taken = match mode {
        Mode::Shared => fs4::FileExt::try_lock_shared(&file),
        Mode::Exclusive => fs4::FileExt::try_lock(&file),
    };
    match taken {
        Ok(()) => Ok(Some(PathLock { file })),
        Err(fs4::TryLockError::WouldBlock) => Ok(None),
        Err(fs4::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {path}")),
    }
}

/// Set by `baton lock PATH -- CMD` for CMD: one line per lock an ancestor holds,
/// `<pid of the holder> <absolute path>`. A `baton write` or `baton read` that CMD runs
/// on such a path must not wait for the lock: its own ancestor holds it.
pub(crate) const HELD_ENV: &str = "BATON_LOCKS_HELD";

/// The locks this process's ancestors hold and told it about, plus `more`, as the
/// value for [`HELD_ENV`].
pub(crate) fn held_env_with(ws: &Workspace, path: &RelPath) -> String {
    let mut lines: Vec<String> = std::env::var(HELD_ENV)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    lines.push(format!("{} {}", std::process::id(), ws.abs(path).display()));
    lines.join("\n")
}

/// Whether an ancestor of this process holds the exclusive lock on `path` (as
/// [`HELD_ENV`] says, checked against the actual process tree, so a stale or inherited
/// variable is ignored).
pub(crate) fn held_by_ancestor(ws: &Workspace, path: &RelPath) -> bool {
    let Ok(held) = std::env::var(HELD_ENV) else {
        return false;
    };
    let abs = ws.abs(path);
    let ancestors = ancestors();
    held.lines().any(|line| {
        line.split_once(' ').is_some_and(|(pid, held_path)| {
            std::path::Path::new(held_path) == abs
                && pid.parse::<u32>().is_ok_and(|pid| ancestors.contains(&pid))
        })
    })
}

/// The pids above this process, up to init.
fn ancestors() -> Vec<u32> {
    let mut out = Vec::new();
    let mut pid = std::os::unix::process::parent_id();
    while pid > 1 && out.len() < 256 {
        out.push(pid);
        let Some(ppid) = crate::sys::parent_pid(pid) else {
            break;
        };
        pid = ppid;
    }
    out
}

/// Blocks until the lock on `path` is held in `mode`, unless an ancestor holds the
/// exclusive one already (`None` then: nothing to release).
pub(crate) fn lock_unless_held(
    ws: &Workspace,
    path: &RelPath,
    mode: Mode,
) -> Result<Option<PathLock>> {
    if held_by_ancestor(ws, path) {
        return Ok(None);
    }
    lock(ws, path, mode).map(Some)
}
