//! The journal and the state store, kept in step: every append is applied to the store
//! at once, together with whatever other processes appended before it, so the store is
//! always the journal's in `seq` order. In memory the ledger keeps only the live work:
//! the tasks not done or dead. Everything else is asked of the store.
//!
//! Task ids whose state changed are collected as *dirty*, so the daemon's scheduler
//! reacts to work from any source (a scan, a commit, `baton retry` in another process)
//! in one way: by looking at what changed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context as _, Result};

use crate::journal::{
    Appender, ArtifactInfo, Durability, Entry, History, Record, TaskId, TaskInfo,
};
use crate::store::Store;
use crate::workspace::{RelPath, Workspace};

pub(crate) struct Ledger {
    appender: Appender,
    store: Store,
    /// The tasks not done or dead, as of the last entry applied.
    live: HashMap<TaskId, TaskInfo>,
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
    /// Opens the journal and the store, brought up to the journal's end. The daemon's:
    /// appends do not ring the doorbell.
    pub(crate) fn open(ws: &Workspace) -> Result<Ledger> {
        Ledger::open_with(ws, Appender::quiet)
    }

    /// Like [`Ledger::open`], for a command: each append rings the daemon's doorbell.
    pub(crate) fn open_ringing(ws: &Workspace) -> Result<Ledger> {
        Ledger::open_with(ws, |a| a)
    }

    fn open_with(ws: &Workspace, ring: impl FnOnce(Appender) -> Appender) -> Result<Ledger> {
        let store = Store::open(ws)?;
        let stamp = store.stamp()?;
        let appender = ring(Appender::open_at(ws, stamp.offset, stamp.last_seq)?);
        let live = store
            .unfinished()?
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        let sync_file = Arc::new(File::open(crate::journal::journal_path(ws))?);
        let mut ledger = Ledger {
            appender,
            store,
            live,
            dirty: Vec::new(),
            sync_file,
        };
        ledger.refresh()?;
        ledger.dirty.clear();
        Ok(ledger)
    }

    /// Appends `records` and applies them; returns them. Not yet durable: see
    /// [`Ledger::syncer`].
    pub(crate) fn append(&mut self, records: Vec<Record>) -> Result<Vec<Entry>> {
        if records.is_empty() {
            self.refresh()?;
            return Ok(Vec::new());
        }
        let (written, mut entries) = self.appender.append(records, Durability::Buffered)?;
        crate::failpoint::hit("after-journal-append");
        entries.extend(written.iter().cloned());
        self.apply(&entries)?;
        Ok(written)
    }

    /// Applies what other processes appended since the last look.
    pub(crate) fn refresh(&mut self) -> Result<()> {
        let foreign = self.appender.poll()?;
        if !foreign.is_empty() {
            self.apply(&foreign)?;
        }
        Ok(())
    }

    pub(crate) fn syncer(&self) -> Syncer {
        Syncer(self.sync_file.clone())
    }

    fn apply(&mut self, entries: &[Entry]) -> Result<()> {
        self.store
            .apply(entries, self.appender.offset(), &mut self.live)?;
        self.dirty
            .extend(entries.iter().filter_map(|e| e.record.task()).cloned());
        Ok(())
    }

    /// The tasks not done or dead: the daemon's live work.
    pub(crate) fn live(&self) -> impl Iterator<Item = &TaskInfo> {
        self.live.values()
    }

    /// The store, for what the live set does not hold.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Task ids whose state changed since the last call, oldest first.
    pub(crate) fn take_dirty(&mut self) -> Vec<TaskId> {
        std::mem::take(&mut self.dirty)
    }
}

impl History for Ledger {
    fn task(&self, id: &TaskId) -> Result<Option<Cow<'_, TaskInfo>>> {
        match self.live.get(id) {
            Some(t) => Ok(Some(Cow::Borrowed(t))),
            None => self.store.task(id),
        }
    }

    fn children(&self, id: &TaskId) -> Result<Vec<TaskInfo>> {
        let mut children = self.store.children(id)?;
        for c in &mut children {
            if let Some(live) = self.live.get(&c.id) {
                *c = live.clone();
            }
        }
        Ok(children)
    }

    fn artifact(&self, path: &RelPath) -> Result<Option<ArtifactInfo>> {
        self.store.artifact(path)
    }

    fn rejection(&self, path: &RelPath, hash: &str) -> Result<Option<String>> {
        self.store.rejection(path, hash)
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
