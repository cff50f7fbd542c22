//! Spare attempt folders, made ahead of need.
//!
//! Starting an agent needs `runs/<task>/1/` with `out/`, `task.json` and two log files:
//! six new inodes, the slowest part of dispatch on some file systems. A few skeletons
//! wait in `.baton/spare/`; a first attempt renames one into place (one cheap rename)
//! and the pool is refilled on the blocking pool, off the path from a brief's arrival
//! to its agent's start. Skeletons left at exit are adopted by the next daemon.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context as _, Result};

/// How many skeletons to keep ready.
const TARGET: usize = 8;
/// The files a skeleton's attempt folder holds, created empty.
const FILES: [&str; 3] = ["task.json", "stdout.log", "stderr.log"];

pub struct Spares {
    dir: PathBuf,
    ready: Mutex<Vec<PathBuf>>,
    refilling: AtomicBool,
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
        Arc::new(Spares {
            dir,
            ready: Mutex::new(ready),
            refilling: AtomicBool::new(false),
            next: AtomicU64::new(0),
        })
    }

    /// An empty pool that is never filled: for a [`super::Ctx`] that runs no agents.
    pub fn none() -> Arc<Spares> {
        Arc::new(Spares {
            dir: PathBuf::new(),
            ready: Mutex::new(Vec::new()),
            refilling: AtomicBool::new(true),
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

    /// Tops the pool up on the blocking pool. Called when an agent has ended, so the
    /// refill never competes with an agent's start for the CPU.
    pub fn refill_in_background(self: &Arc<Self>) {
        if self.refilling.swap(true, Ordering::SeqCst) {
            return;
        }
        let spares = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = spares.fill() {
                tracing::debug!("making spare attempt folders: {e:#}");
            }
            spares.refilling.store(false, Ordering::SeqCst);
        });
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
