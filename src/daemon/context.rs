//! What every part of the daemon shares: the floor the scheduler, runners, ingest and
//! recovery stand on. It is built once by [`super::run`] and handed around in an `Arc`.
//!
//! The config and what is built from it ([`Setup`]) can be replaced while the daemon
//! runs (an edited `baton.toml`): each attempt keeps the setup it was started with.

use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use super::launch::Launcher;
use super::process::Tracker;
use super::scheduler::TaskView;
use super::watcher::Watches;
use crate::commit::Committer;
use crate::config::Config;
use crate::index::writer::IndexHandle;
use crate::journal::segments::Compressor;
use crate::journal::{History, TaskId};
use crate::ledger::SharedLedger;
use crate::store::SeenCheck;
use crate::workspace::Workspace;

/// The config the daemon runs, and what is built from it.
pub(crate) struct Setup {
    pub(crate) cfg: Config,
    /// How agents are started.
    pub(crate) launcher: Launcher,
    /// blake3 of `baton.toml` as read, as journalled in the `config` record.
    pub(crate) hash: String,
}

impl Setup {
    /// Commits task outputs by this config, feeding the daemon's index.
    pub(crate) fn committer<'a>(&'a self, ctx: &'a Ctx) -> Committer<'a> {
        Committer {
            ws: &ctx.ws,
            cfg: &self.cfg,
            ledger: &ctx.ledger,
            index: Some(&ctx.index),
        }
    }
}

pub(crate) struct Ctx {
    pub(crate) ws: Workspace,
    /// The setup new work uses; replaced when `baton.toml` changes.
    setup: RwLock<Arc<Setup>>,
    /// The journal and its replayed state, kept in step; held for microseconds.
    pub(crate) ledger: SharedLedger,
    /// The search index's writer thread, fed with what arrives and is committed.
    pub(crate) index: IndexHandle,
    /// Store connections for ingest workers' stat checks, kept between batches.
    pub(crate) seen_checks: Mutex<Vec<SeenCheck>>,
    /// Compresses the journal's sealed segments, when `[journal] compress` is on.
    pub(crate) compressor: Option<Compressor>,
    /// The agents' processes, and whatever they leave running.
    pub(crate) processes: Tracker,
    /// The file watcher's watches, once it runs.
    pub(crate) watches: std::sync::OnceLock<Arc<Watches>>,
}

impl Ctx {
    pub(crate) fn new(
        ws: Workspace,
        setup: Setup,
        ledger: SharedLedger,
        index: IndexHandle,
    ) -> Ctx {
        let compressor = setup
            .cfg
            .journal
            .compress
            .then(|| Compressor::new(ws.journal_dir()));
        Ctx {
            ws,
            setup: RwLock::new(Arc::new(setup)),
            ledger,
            index,
            seen_checks: Mutex::new(Vec::new()),
            compressor,
            processes: Tracker::new(),
            watches: std::sync::OnceLock::new(),
        }
    }

    /// The setup as it is now.
    pub(crate) fn setup(&self) -> Arc<Setup> {
        self.setup
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// New work uses `setup` from now on.
    pub(crate) fn replace_setup(&self, setup: Setup) {
        *self
            .setup
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(setup);
    }

    /// The task as the journal has it now, for the scheduler.
    pub(crate) fn view(&self, task: &TaskId) -> Option<TaskView> {
        let ledger = self.ledger.lock();
        let t = match ledger.task(task) {
            Ok(t) => t?,
            Err(e) => {
                tracing::error!(%task, "looking up a task: {e:#}");
                return None;
            }
        };
        let retry_in = t
            .retry_at
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .unwrap_or_default();
        Some(TaskView {
            agent: t.agent.clone(),
            status: t.status,
            retry_in,
            cancelled: t.cancelled,
        })
    }
}
