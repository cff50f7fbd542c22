//! File events as hints (DESIGN §4.1–4.2).
//!
//! notify's callback runs on notify's thread: it only classifies an event into a
//! [`Hint`] and `try_send`s it. It never blocks and never drops: when the channel is full
//! it raises the overflow flag, which the readiness loop turns into a full rescan, the
//! same as the kernel queue's own overflow.
//!
//! Each folder of a stage gets a watch of its own, always added before the folder is
//! listed, so what arrives is listed or heard: by the walk of every stage (at start,
//! after lost events) and of a folder (one renamed into a stage, found by the ingest)
//! as they go, and by [`Watches::watch_tree`] for a folder made in a stage (a
//! [`Hint::Folder`]) or a new stage. notify's recursive mode instead stats every file under a stage to find its
//! folders, which made a start over 100,000 files wait 400 ms before its first
//! dispatch.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{Context as _, Result};
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::workspace::{CONFIG_FILE, RelPath, Workspace};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Hint {
    /// Renamed into a stage: complete at once.
    Renamed(RelPath),
    /// Its writer closed it: complete once quiet for the settle time.
    Closed(RelPath),
    /// Written to: pushes back a pending settle.
    Written(RelPath),
    /// A folder appeared inside a stage: scan it (its files' events may be lost).
    Folder(RelPath),
    /// A stage folder appeared at the root: watch it and scan it.
    Stage(String),
    /// Removed or renamed away.
    Removed(RelPath),
    /// Events were lost: reconcile everything.
    Rescan,
    /// Another process appended to the journal.
    Journal,
    /// `baton.toml` was written or replaced.
    Config,
}

/// Shared between the callback and the readiness loop.
#[derive(Default)]
pub(crate) struct Flags {
    pub(crate) overflow: AtomicBool,
    journal_pending: AtomicBool,
}

impl Flags {
    /// Clears the journal flag; call on receiving [`Hint::Journal`].
    pub(crate) fn journal_seen(&self) {
        self.journal_pending.store(false, Ordering::SeqCst);
    }
}

pub(crate) struct Watcher {
    watches: Arc<Watches>,
    root: PathBuf,
    /// The stages, as the callback reads them: an edited config can add some.
    stages: Arc<RwLock<Vec<String>>>,
}

impl Watcher {
    /// Watches the root (for stage folders appearing) and the journal's doorbell. The
    /// stages are watched by the walk of every stage that starts the daemon.
    pub(crate) fn start(
        ws: &Workspace,
        cfg: &Config,
        tx: mpsc::Sender<Hint>,
        flags: Arc<Flags>,
    ) -> Result<Watcher> {
        let root = ws.root.clone();
        let stages = Arc::new(RwLock::new(cfg.stages.clone()));
        let seen_stages = stages.clone();
        let doorbell = ws.doorbell_dir();
        let handler = move |event: notify::Result<notify::Event>| {
            let hints = match event {
                Ok(event) => {
                    let stages = seen_stages.read().unwrap_or_else(|p| p.into_inner());
                    classify(&root, &stages, &doorbell, &event)
                }
                Err(e) => {
                    tracing::warn!("file watcher error: {e}; rescanning");
                    vec![Hint::Rescan]
                }
            };
            for hint in hints {
                if hint == Hint::Journal && flags.journal_pending.swap(true, Ordering::SeqCst) {
                    continue; // one pending journal hint is enough
                }
                if tx.try_send(hint).is_err() {
                    flags.overflow.store(true, Ordering::SeqCst);
                }
            }
        };
        let mut inner =
            notify::recommended_watcher(handler).context("starting the file watcher")?;
        inner
            .watch(&ws.root, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", ws.root.display()))?;
        inner
            .watch(&ws.doorbell_dir(), RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", ws.doorbell_dir().display()))?;
        Ok(Watcher {
            watches: Arc::new(Watches {
                inner: Mutex::new(inner),
            }),
            root: ws.root.clone(),
            stages,
        })
    }

    /// Takes the stages of an edited config, watching the new ones.
    pub(crate) fn set_stages(&mut self, stages: &[String]) -> Result<()> {
        let new: Vec<String> = {
            let mut known = self.stages.write().unwrap_or_else(|p| p.into_inner());
            let new = stages
                .iter()
                .filter(|s| !known.contains(s))
                .cloned()
                .collect();
            *known = stages.to_vec();
            new
        };
        for stage in new {
            self.watch_stage(&stage)?;
        }
        Ok(())
    }

    /// Watches `dir` (a workspace path: a stage, or a folder in one) and all below it.
    pub(crate) fn watch_stage(&mut self, dir: &str) -> Result<()> {
        self.watches.watch_tree(&self.root.join(dir))
    }

    /// The watches, for the ingest to watch a folder renamed into a stage.
    pub(crate) fn watches(&self) -> Arc<Watches> {
        self.watches.clone()
    }
}

/// The file watcher's watches, one per folder.
pub(crate) struct Watches {
    inner: Mutex<RecommendedWatcher>,
}

impl Watches {
    /// Watches the folder `dir` and every folder below it but hidden ones, each before
    /// its subfolders are listed: a subfolder made meanwhile is reported by its parent's
    /// watch. Watching a folder watched already changes nothing.
    pub(crate) fn watch_tree(&self, dir: &Path) -> Result<()> {
        self.watch(dir)?;
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut pending = subfolders(dir);
        while let Some(sub) = pending.pop() {
            match inner.watch(&sub, RecursiveMode::NonRecursive) {
                Ok(()) => pending.extend(subfolders(&sub)),
                // Gone since it was listed: nothing to watch.
                Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
                Err(e) => return Err(e).with_context(|| format!("watching {}", sub.display())),
            }
        }
        Ok(())
    }
}

impl Watches {
    /// Watches the folder `dir` (not those below it).
    pub(crate) fn watch(&self, dir: &Path) -> Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", dir.display()))
    }
}

/// The folders in `dir`, hidden ones left out, from its listing alone.
fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
        .map(|e| e.path())
        .collect()
}

/// Debug builds only: with `BATON_TEST_DEAF=TEXT`, events for paths holding TEXT are
/// dropped, as a starved watcher thread loses them, for tests of the reconcile.
fn deaf_to(rel: &RelPath) -> bool {
    if !cfg!(debug_assertions) {
        return false;
    }
    static DEAF: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    DEAF.get_or_init(|| {
        std::env::var("BATON_TEST_DEAF")
            .ok()
            .filter(|d| !d.is_empty())
    })
    .as_ref()
    .is_some_and(|deaf| rel.as_str().contains(deaf.as_str()))
}

fn classify(root: &Path, stages: &[String], doorbell: &Path, event: &notify::Event) -> Vec<Hint> {
    if event.need_rescan() {
        return vec![Hint::Rescan];
    }
    // notify 8 watches for opens too (IN_OPEN), so every read of a file in a stage, the
    // daemon's own included, comes here: dismissed before any path is looked at.
    if matches!(
        event.kind,
        EventKind::Access(
            AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)
        )
    ) {
        return Vec::new();
    }
    let mut hints = Vec::new();
    for (i, path) in event.paths.iter().enumerate() {
        if path.starts_with(doorbell) {
            if matches!(
                event.kind,
                EventKind::Access(AccessKind::Close(AccessMode::Write)) | EventKind::Create(_)
            ) {
                hints.push(Hint::Journal);
            }
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let Ok(rel) = RelPath::from_path(rel) else {
            // A name that is no workspace path: the walk of its folder journals it as
            // rejected (if its folder is itself a path in a stage).
            let parent = rel.parent().and_then(|p| RelPath::from_path(p).ok());
            if let Some(dir) = parent.filter(|d| stages.iter().any(|s| s == d.first())) {
                if matches!(
                    event.kind,
                    EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_))
                ) && !hints.contains(&Hint::Folder(dir.clone()))
                {
                    hints.push(Hint::Folder(dir));
                }
            }
            continue;
        };
        if rel.as_str() == CONFIG_FILE {
            let written = matches!(
                event.kind,
                EventKind::Access(AccessKind::Close(AccessMode::Write))
                    | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Any))
            ) || (event.kind
                == EventKind::Modify(ModifyKind::Name(RenameMode::Both))
                && i == 1);
            if written {
                hints.push(Hint::Config);
            }
            continue;
        }
        if !stages.iter().any(|s| s == rel.first()) || deaf_to(&rel) {
            continue;
        }
        let at_root = !rel.as_str().contains('/');
        let hint = match event.kind {
            EventKind::Create(CreateKind::Folder)
            | EventKind::Modify(ModifyKind::Name(RenameMode::To))
                if at_root =>
            {
                Some(Hint::Stage(rel.as_str().to_string()))
            }
            _ if at_root => None,
            _ if rel.is_ignored() => None,
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Hint::Closed(rel)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Any)) => {
                Some(Hint::Renamed(rel))
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => Some(if i == 0 {
                Hint::Removed(rel)
            } else {
                Hint::Renamed(rel)
            }),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                Some(Hint::Removed(rel))
            }
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => Some(Hint::Written(rel)),
            EventKind::Create(CreateKind::Folder) => Some(Hint::Folder(rel)),
            _ => None,
        };
        hints.extend(hint);
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::Event;

    fn classify_one(kind: EventKind, paths: &[&str]) -> Vec<Hint> {
        let mut event = Event::new(kind);
        for p in paths {
            event = event.add_path(PathBuf::from(p));
        }
        classify(
            Path::new("/ws"),
            &["briefs".into()],
            Path::new("/ws/.baton/doorbell"),
            &event,
        )
    }

    fn rel(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    #[test]
    fn readiness_events() {
        assert_eq!(
            classify_one(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                &["/ws/briefs/a.md"]
            ),
            vec![Hint::Closed(rel("briefs/a.md"))]
        );
        assert_eq!(
            classify_one(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &["/ws/briefs/a.tmp2", "/ws/briefs/a.md"]
            ),
            vec![
                Hint::Removed(rel("briefs/a.tmp2")),
                Hint::Renamed(rel("briefs/a.md"))
            ]
        );
        assert!(
            classify_one(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                &["/ws/briefs/a.md"]
            )
            .is_empty()
        );
        assert!(
            classify_one(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                &["/ws/briefs/.a.swp"]
            )
            .is_empty()
        );
        assert!(
            classify_one(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                &["/ws/other/a.md"]
            )
            .is_empty()
        );
    }

    #[test]
    fn folders_and_stages() {
        assert_eq!(
            classify_one(EventKind::Create(CreateKind::Folder), &["/ws/briefs/sub"]),
            vec![Hint::Folder(rel("briefs/sub"))]
        );
        assert_eq!(
            classify_one(EventKind::Create(CreateKind::Folder), &["/ws/briefs"]),
            vec![Hint::Stage("briefs".into())]
        );
        assert_eq!(
            classify_one(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                &["/ws/.baton/doorbell/ring"]
            ),
            vec![Hint::Journal]
        );
        assert_eq!(
            classify_one(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &["/ws/.baton.toml.swp", "/ws/baton.toml"]
            ),
            vec![Hint::Config]
        );
        assert!(
            classify_one(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                &["/ws/daemon.log"]
            )
            .is_empty()
        );
    }
}
