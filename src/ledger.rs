//! The journal and its replayed state, kept in step: every append is applied to the
//! state at once, together with whatever other processes appended before it, so the
//! state is always the journal's in `seq` order.
//!
//! Task ids whose state changed are collected as *dirty*, so the daemon's scheduler
//! reacts to work from any source (a scan, a commit, `baton retry` in another process)
//! in one way: by looking at what changed.

use std::fs::File;
use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::journal::{Appender, Entry, Record, State};
use crate::workspace::Workspace;

pub struct Ledger {
    appender: Appender,
    pub state: State,
    dirty: Vec<String>,
    sync_file: Arc<File>,
}

/// Makes everything appended so far durable. Used after the ledger's lock is released,
/// so an fsync never holds up other appenders.
#[derive(Clone)]
pub struct Syncer(Arc<File>);

impl Syncer {
    pub fn sync(&self) -> Result<()> {
        self.0.sync_data().context("syncing the journal")
    }
}

impl Ledger {
    /// Opens the journal and replays all of it. The daemon's: appends do not ring the
    /// doorbell.
    pub fn open(ws: &Workspace) -> Result<Ledger> {
        Ledger::open_with(Appender::open(ws)?.quiet(), ws)
    }

    /// Like [`Ledger::open`], for a command: each append rings the daemon's doorbell.
    pub fn open_ringing(ws: &Workspace) -> Result<Ledger> {
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
    pub fn append(&mut self, records: Vec<Record>) -> Result<Vec<Entry>> {
        if records.is_empty() {
            self.refresh()?;
            return Ok(Vec::new());
        }
        let (written, foreign) = self.appender.append(records, false)?;
        self.apply(&foreign);
        self.apply(&written);
        Ok(written)
    }

    /// Applies what other processes appended since the last look.
    pub fn refresh(&mut self) -> Result<()> {
        let foreign = self.appender.poll()?;
        self.apply(&foreign);
        Ok(())
    }

    pub fn syncer(&self) -> Syncer {
        Syncer(self.sync_file.clone())
    }

    fn apply(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.state.apply(entry);
            if let Some(task) = task_of(&entry.record) {
                self.dirty.push(task.to_string());
            }
        }
    }

    /// Task ids whose state changed since the last call, oldest first.
    pub fn take_dirty(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dirty)
    }
}

fn task_of(record: &Record) -> Option<&str> {
    match record {
        Record::Queued { task, .. }
        | Record::Started { task, .. }
        | Record::Committing { task, .. }
        | Record::Finished { task, .. }
        | Record::Approval { task, .. } => Some(task),
        Record::Artifact { .. } | Record::Rejected { .. } => None,
    }
}
