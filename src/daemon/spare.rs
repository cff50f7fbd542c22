//! Spare attempt folders, made ahead of need.
//!
//! Starting an agent needs `runs/<task>/1/` with `out/`, `task.json` and two log files:
//! six new inodes, the slowest part of dispatch on some file systems. A few skeletons
//! wait in `.baton/spare/`; a first attempt renames one into place (one cheap rename).
//! The pool is refilled by a thread of its own at idle priority (`SCHED_IDLE`): it uses
//! CPU time nothing else wants, so it never delays a dispatch. When a burst leaves it
//! no idle time, the pool runs dry and attempts make their folders themselves.
//! Skeletons left at exit are adopted by the next daemon.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{Context as _, Result};

/// How many skeletons to keep ready.
const TARGET: usize = 8;
/// The files a skeleton's attempt folder holds, created empty.
const FILES: [&str; 3] = ["task.json", "stdout.log", "stderr.log"];

pub struct Spares {
    dir: PathBuf,
    ready: Mutex<Vec<PathBuf>>,
    /// Wakes the refilling thread; `None` for a pool that is never filled.
    refill: Option<SyncSender<()>>,
    next: AtomicU64,
}

impl Spares {
    /// Adopts the complete skeletons already in `dir`.
    pub fn open(dir: PathBuf) -> Arc<Spares> {
        let mut ready = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if is_complete(&path) {
                    ready.push(path);
                } else {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
        }
        let (tx, rx) = sync_channel::<()>(1);
        let spares = Arc::new(Spares {
            dir,
            ready: Mutex::new(ready),
            refill: Some(tx),
            next: AtomicU64::new(0),
        });
        // The thread holds the pool weakly: dropping the pool drops the sender, which
        // ends the thread.
        let pool: Weak<Spares> = Arc::downgrade(&spares);
        let started = std::thread::Builder::new()
            .name("baton-spares".into())
            .spawn(move || {
                lower_priority();
                while rx.recv().is_ok() {
                    let Some(spares) = pool.upgrade() else { return };
                    if let Err(e) = spares.fill() {
                        tracing::debug!("making spare attempt folders: {e:#}");
                    }
                }
            });
        if let Err(e) = started {
            tracing::warn!("could not start the spare-folder thread: {e}");
        }
        spares
    }

    /// An empty pool that is never filled: for a [`super::Ctx`] that runs no agents.
    pub fn none() -> Arc<Spares> {
        Arc::new(Spares {
            dir: PathBuf::new(),
            ready: Mutex::new(Vec::new()),
            refill: None,
            next: AtomicU64::new(0),
        })
    }

    /// Renames a skeleton to `task_dir` (which must not exist), leaving `task_dir/1/`
    /// ready. Returns false when none could be used; the caller creates the folders.
    pub fn install(self: &Arc<Self>, task_dir: &Path) -> bool {
        let taken = self.ready.lock().map(|mut r| r.pop()).unwrap_or(None);
        let Some(skeleton) = taken else { return false };
        match std::fs::rename(&skeleton, task_dir) {
            Ok(()) => true,
            Err(_) => {
                if let Ok(mut ready) = self.ready.lock() {
                    ready.push(skeleton);
                }
                false
            }
        }
    }

    /// Asks the refilling thread to top the pool up (a no-op if it is already asked).
    pub fn refill_in_background(&self) {
        if let Some(tx) = &self.refill {
            // Full: a wake-up is pending already. Disconnected: the thread could not start.
            let _ = tx.try_send(());
        }
    }

    /// Fills the pool up, on the calling thread.
    pub fn fill(&self) -> Result<()> {
        loop {
            let count = self.ready.lock().map(|r| r.len()).unwrap_or(TARGET);
            if count >= TARGET {
                return Ok(());
            }
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let skeleton = self.dir.join(format!("{}-{n}", std::process::id()));
            let attempt = skeleton.join("1");
            std::fs::create_dir_all(attempt.join("out"))
                .with_context(|| format!("creating {}", attempt.display()))?;
            for name in FILES {
                std::fs::File::create(attempt.join(name))?;
            }
            if let Ok(mut ready) = self.ready.lock() {
                ready.push(skeleton);
            }
        }
    }
}

fn is_complete(skeleton: &Path) -> bool {
    let attempt = skeleton.join("1");
    attempt.join("out").is_dir() && FILES.iter().all(|f| attempt.join(f).is_file())
}

/// Puts the calling thread at idle priority: it runs only when a CPU has nothing else
/// to do. Best effort: without it the pool still works, competing like any thread.
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler with pid 0 changes the calling thread only, and
    // `param` is a valid sched_param for SCHED_IDLE.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        tracing::debug!(
            "could not lower the spare-folder thread's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Asks the file system to place each new folder made in `dir` where it sees fit rather
/// than next to `dir` (ext2/3/4's "top of directory hierarchy" attribute, `chattr +T`,
/// which its Orlov allocator honours). Each attempt's folders are independent of the
/// others, so nothing is lost in locality, and on ext4 without a journal it matters: an
/// inode is only found by scanning past every inode deleted in that block group in the
/// last minutes, and a burst right after a large `rm -rf` took 2,240 µs of daemon CPU
/// per task against 660 µs with the attribute. Best effort: other file systems refuse
/// the request, and nothing changes.
pub fn spread_subfolders(dir: &Path) {
    use std::os::fd::AsRawFd;
    /// `FS_TOPDIR_FL` of linux/fs.h.
    const TOPDIR: libc::c_int = 0x0002_0000;
    let Ok(folder) = std::fs::File::open(dir) else {
        return;
    };
    let fd = folder.as_raw_fd();
    let mut flags: libc::c_int = 0;
    // SAFETY: both requests read or write one int through a pointer to a live c_int,
    // on a descriptor that stays open for the call.
    let done = unsafe {
        libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) == 0
            && (flags & TOPDIR != 0 || {
                flags |= TOPDIR;
                libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &flags) == 0
            })
    };
    if !done {
        tracing::debug!(
            dir = %dir.display(),
            "the file system does not take the top-directory attribute: {}",
            std::io::Error::last_os_error()
        );
    }
}
