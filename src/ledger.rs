//! The journal and its replayed state, kept in step: every append is applied to the
//! state at once, together with whatever other processes appended before it, so the
//! state is always the journal's in `seq` order.
//!
//! Task ids whose state changed are collected as *dirty*, so the daemon's scheduler
//! reacts to work from any source (a scan, a commit, `baton retry` in another process)
//! in one way: by looking at what changed.

use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context as _, Result};

use crate::journal::{Appender, Durability, Entry, Record, State, TaskId};
use crate::workspace::Workspace;

pub(crate) struct Ledger {
    appender: Appender,
    pub(crate) state: State,
    /// Tasks touched by records applied since the scheduler last asked.
    dirty: Vec<TaskId>,
    /// The journal, opened for `fsync` by whoever holds a [`Syncer`].
    sync_file: Arc<File>,
}

/// Makes everything appended so far durable. Used after the ledger's lock is released,
/// so an fsync never holds up other appenders.
#[derive(Clone)]
pub(crate) struct Syncer(Arc<File>);

impl Syncer {
    pub(crate) fn sync(&self) -> Result<()> {
        self.0.sync_data().context("syncing the journal")
    }
}

impl Ledger {
    /// Opens the journal and replays all of it. The daemon's: appends do not ring the
    /// doorbell.
    pub(crate) fn open(ws: &Workspace) -> Result<Ledger> {
        Ledger::open_with(Appender::open(ws)?.quiet(), ws)
    }

    /// Like [`Ledger::open`], for a command: each append rings the daemon's doorbell.
    pub(crate) fn open_ringing(ws: &Workspace) -> Result<Ledger> {
        Ledger::open_with(Appender::open(ws)?, ws)
    }

    fn open_with(mut appender: Appender, ws: &Workspace) -> Result<Ledger> {
        let entries = appender.poll()?;
        let state = State::replay(&entries);
        let sync_file = Arc::new(File::open(crate::journal::journal_path(ws))?);
        Ok(Ledger {
            appender,
            state,
            dirty: Vec::new(),
            sync_file,
        })
    }

    /// Appends `records` and applies them; returns them. Not yet durable: see
    /// [`Ledger::syncer`].
    pub(crate) fn append(&mut self, records: Vec<Record>) -> Result<Vec<Entry>> {
        if records.is_empty() {
            self.refresh()?;
            return Ok(Vec::new());
        }
        let (written, foreign) = self.appender.append(records, Durability::Buffered)?;
        self.apply(&foreign);
        self.apply(&written);
        Ok(written)
    }

    /// Applies what other processes appended since the last look.
    pub(crate) fn refresh(&mut self) -> Result<()> {
        let foreign = self.appender.poll()?;
        self.apply(&foreign);
        Ok(())
    }

    pub(crate) fn syncer(&self) -> Syncer {
        Syncer(self.sync_file.clone())
    }

    fn apply(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.state.apply(entry);
            if let Some(task) = entry.record.task() {
                self.dirty.push(task.clone());
            }
        }
    }

    /// Task ids whose state changed since the last call, oldest first.
    pub(crate) fn take_dirty(&mut self) -> Vec<TaskId> {
        std::mem::take(&mut self.dirty)
    }
}

/// The ledger as the daemon's parts share it; each holds it for microseconds.
#[derive(Clone)]
pub(crate) struct SharedLedger(Arc<Mutex<Ledger>>);

impl SharedLedger {
    pub(crate) fn new(ledger: Ledger) -> SharedLedger {
        SharedLedger(Arc::new(Mutex::new(ledger)))
    }

    /// The ledger, locked. A panic elsewhere while it was held leaves it as the journal
    /// left it (every change is an append applied in full), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `records`. With [`Durability::Synced`] it returns once they are on disk;
    /// the fsync happens after the lock is released, so it never holds up the others.
    pub(crate) fn append(&self, records: Vec<Record>, durability: Durability) -> Result<()> {
        let syncer = {
            let mut ledger = self.lock();
            ledger.append(records)?;
            ledger.syncer()
        };
        if durability == Durability::Synced {
            syncer.sync()?;
        }
        Ok(())
    }
}
