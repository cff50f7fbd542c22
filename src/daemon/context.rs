//! What every part of the daemon shares: the floor the scheduler, runners, ingest and
//! recovery stand on. It is built once by [`super::run`] and handed around in an `Arc`.

use std::time::SystemTime;

use super::launch::Launcher;
use super::scheduler::TaskView;
use crate::commit::Committer;
use crate::config::Config;
use crate::index::writer::IndexHandle;
use crate::journal::TaskId;
use crate::ledger::SharedLedger;
use crate::workspace::Workspace;

pub(crate) struct Ctx {
    pub(crate) ws: Workspace,
    pub(crate) cfg: Config,
    /// The journal and its replayed state, kept in step; held for microseconds.
    pub(crate) ledger: SharedLedger,
    /// The search index's writer thread, fed with what arrives and is committed.
    pub(crate) index: IndexHandle,
    /// How agents are started.
    pub(crate) launcher: Launcher,
}

impl Ctx {
    /// Commits task outputs, feeding the daemon's index.
    pub(crate) fn committer(&self) -> Committer<'_> {
        Committer {
            ws: &self.ws,
            cfg: &self.cfg,
            ledger: &self.ledger,
            index: Some(&self.index),
        }
    }

    /// The task as the journal has it now, for the scheduler.
    pub(crate) fn view(&self, task: &TaskId) -> Option<TaskView> {
        let ledger = self.ledger.lock();
        let t = ledger.state.tasks.get(task)?;
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
