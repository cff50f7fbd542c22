//! Spare attempt folders, made ahead of need.
//!
//! Starting an agent needs `runs/<task>/1/` with `out/`, `task.json` and two log files:
//! six new inodes, the slowest part of dispatch on some file systems. A few skeletons
//! wait in `.baton/spare/`; a first attempt renames one into place (one cheap rename).
//! The pool is refilled by a thread of its own at idle priority (`SCHED_IDLE`): it uses
//! CPU time nothing else wants, so it never delays a dispatch. When a burst leaves it
//! no idle time, the pool runs dry and an attempt makes its skeleton on the spot.
//! Skeletons left at exit are adopted by the next daemon.
//!
//! Where the skeletons' inodes go matters on ext4 (see [`spread_subfolders`]): they are
//! made in a home folder, `spare/<pid>-<ns>-<n>/`, which the file system places where it
//! has room; the skeletons then sit beside it. A home serves until making a skeleton
//! in it takes over [`SLOW_SKELETON`] of CPU (a block group full of just-deleted
//! inodes); then a new one is placed. Placing one per skeleton instead weighed every
//! block group each time, and placing one every 64 cost more again in cold bitmaps.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use anyhow::{Context as _, Result};

/// How many skeletons to keep ready.
const TARGET: usize = 8;
/// Making a skeleton takes about 100 µs of CPU; this much means its home is in a poor
/// place (measured as this thread's CPU time: the refilling thread is often preempted).
const SLOW_SKELETON: Duration = Duration::from_millis(1);
/// The files a skeleton's attempt folder holds, created empty.
const FILES: [&str; 3] = ["task.json", "stdout.log", "stderr.log"];

pub struct Spares {
    /// `.baton/spare/`, holding the home folders.
    dir: PathBuf,
    home: Mutex<Home>,
    /// [`SLOW_SKELETON`], but for tests.
    slow: Duration,
    ready: Mutex<Vec<PathBuf>>,
    /// Wakes the refilling thread; `None` for a pool that is never filled.
    refill: Option<SyncSender<()>>,
    next: AtomicU64,
}

/// The folder skeletons are made in now, and the earlier ones not yet emptied.
#[derive(Default)]
struct Home {
    current: Option<PathBuf>,
    /// The last skeleton made in `current` was slow: place a new home.
    move_on: bool,
    earlier: Vec<PathBuf>,
}

impl Spares {
    /// Opens the pool in `spare`, adopting the complete skeletons earlier daemons left
    /// there and removing the rest.
    pub fn open(spare: &Path) -> Result<Arc<Spares>> {
        Spares::open_with(spare, SLOW_SKELETON)
    }

    /// [`Spares::open`], with how slow a skeleton may be before its home is left.
    fn open_with(spare: &Path, slow: Duration) -> Result<Arc<Spares>> {
        std::fs::create_dir_all(spare).with_context(|| format!("creating {}", spare.display()))?;
        spread_subfolders(spare);
        let mut ready = Vec::new();
        adopt(spare, 0, &mut ready);
        let (tx, rx) = sync_channel::<()>(1);
        let spares = Arc::new(Spares {
            dir: spare.to_path_buf(),
            home: Mutex::new(Home::default()),
            slow,
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
            home: Mutex::new(Home::default()),
            slow: SLOW_SKELETON,
            ready: Mutex::new(Vec::new()),
            refill: None,
            next: AtomicU64::new(0),
        })
    }

    /// Renames a skeleton to `task_dir` (which must not exist), leaving `task_dir/1/`
    /// ready: one from the pool or, when it has run dry, one made now in the same place,
    /// so every attempt's inodes go where this daemon's skeletons go. Returns false when
    /// none could be used; the caller creates the folders.
    pub fn install(self: &Arc<Self>, task_dir: &Path) -> bool {
        let taken = self.ready.lock().map(|mut r| r.pop()).unwrap_or(None);
        let skeleton = match taken {
            Some(skeleton) => skeleton,
            None if self.refill.is_some() => match self.make() {
                Ok(skeleton) => skeleton,
                Err(_) => return false,
            },
            None => return false, // a pool that is never filled has no folder
        };
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
            let skeleton = self.make()?;
            if let Ok(mut ready) = self.ready.lock() {
                ready.push(skeleton);
            }
        }
    }

    /// Makes one skeleton in the current home folder (placing a new one when due). No
    /// lock is held while files are made: the refilling thread runs at idle priority,
    /// and an attempt waiting on a lock it holds would wait for an idle CPU.
    fn make(&self) -> Result<PathBuf> {
        let dir = self.home_dir()?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let skeleton = dir.join(n.to_string());
        let attempt = skeleton.join("1");
        let started = thread_cpu_time();
        std::fs::create_dir_all(attempt.join("out"))
            .with_context(|| format!("creating {}", attempt.display()))?;
        for name in FILES {
            std::fs::File::create(attempt.join(name))?;
        }
        if thread_cpu_time().saturating_sub(started) >= self.slow {
            self.home().move_on = true;
        }
        Ok(skeleton)
    }

    /// The current home folder, placing a new one first if there is none yet or the
    /// last skeleton made in it was slow.
    fn home_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = self.home().usable() {
            return Ok(dir);
        }
        // Unique even if an earlier daemon had this pid.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let made = self.next.load(Ordering::Relaxed);
        let dir = self
            .dir
            .join(format!("{}-{now}-{made}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let earlier = {
            let mut home = self.home();
            let home = &mut *home;
            home.earlier.extend(home.current.replace(dir.clone()));
            home.move_on = false;
            std::mem::take(&mut home.earlier)
        };
        // Homes whose skeletons have all been taken are empty: remove them.
        let kept: Vec<PathBuf> = earlier
            .into_iter()
            .filter(|old| std::fs::remove_dir(old).is_err())
            .collect();
        self.home().earlier.extend(kept);
        Ok(dir)
    }

    fn home(&self) -> MutexGuard<'_, Home> {
        self.home.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Home {
    fn usable(&self) -> Option<PathBuf> {
        self.current.clone().filter(|_| !self.move_on)
    }
}

/// The CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a pointer to a live one.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Collects the complete skeletons in `dir` and removes what is not one: skeletons sit
/// in a daemon's folder (`spare/<pid>-<ns>-<n>/<n>`), or directly in `spare/` (`spare/<pid>-<n>`,
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
/// the home folders skeletons are made in are placed so (see the module's notes), and
/// the skeletons go beside them (70-105 µs of the spare thread's CPU per task, against
/// 105-180). Best effort: other file systems refuse the request, and nothing changes.
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

        // New skeletons go in a home folder of this daemon's, and install into a task.
        pool.ready.lock().unwrap().clear();
        pool.fill().unwrap();
        let made = pool.ready.lock().unwrap().clone();
        assert_eq!(made.len(), TARGET);
        let home = made[0].parent().unwrap();
        assert!(home.parent() == Some(&*spare) && home != spare.join("22-5"));
        assert!(made.iter().all(|s| s.parent() == Some(home)));
        let task = tmp.path().join("t-1");
        assert!(pool.install(&task));
        assert!(is_complete(&task));
        // Run dry, the pool makes one on the spot, in the same place.
        pool.ready.lock().unwrap().clear();
        let task = tmp.path().join("t-2");
        assert!(pool.install(&task));
        assert!(is_complete(&task));
        assert!(!Spares::none().install(&tmp.path().join("t-3")));
    }

    #[test]
    fn a_slow_home_is_left_for_a_new_one_and_emptied_homes_go() {
        let tmp = tempfile::tempdir().unwrap();
        let spare = tmp.path().join("spare");
        let homes = || -> Vec<PathBuf> {
            let mut h: Vec<PathBuf> = std::fs::read_dir(&spare)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            h.sort();
            h
        };
        // Fast enough: one home for good.
        let pool = Spares::open(&spare).unwrap();
        for i in 0..20 {
            assert!(pool.install(&tmp.path().join(format!("a-{i}"))));
        }
        let first = homes();
        assert_eq!(first.len(), 1);
        // Every skeleton "slow": each goes in a new home, and the emptied ones are removed.
        let slow = Spares::open_with(&spare, Duration::ZERO).unwrap();
        let mut seen = Vec::new();
        for i in 0..5 {
            assert!(slow.install(&tmp.path().join(format!("b-{i}"))));
            assert!(is_complete(&tmp.path().join(format!("b-{i}"))));
            let now = homes();
            assert!(now.len() <= 2, "{now:?}"); // the first pool's home, and the current one
            seen.extend(now.into_iter().filter(|h| !first.contains(h)));
        }
        seen.dedup();
        assert_eq!(seen.len(), 5, "{seen:?}");
    }
}
