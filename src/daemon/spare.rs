//! Spare attempt folders, made ahead of need.
//!
//! Starting an agent needs `runs/<task>/1/` with `out/`, `task.json` and two log files:
//! six new inodes, the slowest part of dispatch on some file systems. A few skeletons
//! wait in `.baton/spare/`; a first attempt renames one into place (one cheap rename).
//! The pool is refilled by a thread of its own at idle priority (`SCHED_IDLE`): it uses
//! CPU time nothing else wants, so it never delays a dispatch. When a burst leaves it
//! no idle time, the pool runs dry and attempts make their folders themselves.
//! Skeletons left at exit are adopted by the next daemon.
//!
//! Where the skeletons' inodes go matters on ext4 (see [`spread_subfolders`]): each
//! daemon makes its skeletons in a folder of its own, `spare/<pid>-<ns>/`, which the file
//! system places once, where it has room; the skeletons then sit beside it.

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
    /// Makes this daemon's folder under `spare` (`spare/<pid>-<ns>/`) and adopts the complete
    /// skeletons earlier daemons left there; removes the rest.
    pub fn open(spare: &Path) -> Result<Arc<Spares>> {
        std::fs::create_dir_all(spare).with_context(|| format!("creating {}", spare.display()))?;
        spread_subfolders(spare);
        let mut ready = Vec::new();
        adopt(spare, 0, &mut ready);
        // Unique even if an earlier daemon had this pid (its skeletons were adopted).
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = spare.join(format!("{}-{started}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
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
        Ok(spares)
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
            let skeleton = self.dir.join(n.to_string());
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

/// Collects the complete skeletons in `dir` and removes what is not one: skeletons sit
/// in a daemon's folder (`spare/<pid>-<ns>/<n>`), or directly in `spare/` (`spare/<pid>-<n>`,
/// as earlier versions made them). `depth` is 0 for `spare/` itself.
fn adopt(dir: &Path, depth: usize, ready: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if is_complete(&path) {
            ready.push(path);
        } else if depth == 0 && entry.file_type().is_ok_and(|t| t.is_dir()) {
            adopt(&path, 1, ready);
            let _ = std::fs::remove_dir(&path); // only if nothing was adopted from it
        } else {
            let _ = std::fs::remove_dir_all(&path);
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
/// which its Orlov allocator honours). On ext4 without a journal it matters where: an
/// inode is only found by scanning past every inode deleted in that block group in the
/// last minutes, and a burst right after a large `rm -rf` took 2,240 µs of daemon CPU
/// per task against 660 µs with the attribute on the folders of every attempt. But
/// placing a folder that way weighs every block group, 30-50 µs a folder here: so only
/// each daemon's skeleton folder is placed so, once, and its skeletons go beside it
/// (70-105 µs of the spare thread's CPU per task, against 105-180). Best effort: other
/// file systems refuse the request, and nothing changes.
fn spread_subfolders(dir: &Path) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn skeleton(at: &Path, complete: bool) {
        let attempt = at.join("1");
        std::fs::create_dir_all(attempt.join("out")).unwrap();
        for name in FILES.iter().take(if complete { 3 } else { 2 }) {
            std::fs::File::create(attempt.join(name)).unwrap();
        }
    }

    #[test]
    fn a_daemon_adopts_complete_skeletons_in_either_layout_and_makes_its_own_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let spare = tmp.path().join("spare");
        skeleton(&spare.join("11-0"), true); // an earlier version's layout
        skeleton(&spare.join("22-5/0"), true); // an earlier daemon's folder
        skeleton(&spare.join("22-5/1"), false);
        skeleton(&spare.join("33-6/0"), false);
        std::fs::create_dir_all(spare.join("44-7")).unwrap();

        let pool = Spares::open(&spare).unwrap();
        let mut ready = pool.ready.lock().unwrap().clone();
        ready.sort();
        assert_eq!(ready, [spare.join("11-0"), spare.join("22-5/0")]);
        assert!(!spare.join("22-5/1").exists());
        assert!(!spare.join("33-6").exists() && !spare.join("44-7").exists());
        assert!(pool.dir.starts_with(&spare) && pool.dir.is_dir());
        assert_ne!(pool.dir, spare.join("22-5"));

        // New skeletons go in the daemon's own folder, and install into a task folder.
        pool.ready.lock().unwrap().clear();
        pool.fill().unwrap();
        assert_eq!(pool.ready.lock().unwrap().len(), TARGET);
        assert!(
            pool.ready
                .lock()
                .unwrap()
                .iter()
                .all(|s| s.parent() == Some(&*pool.dir))
        );
        let task = tmp.path().join("t-1");
        assert!(pool.install(&task));
        assert!(is_complete(&task));
    }
}
