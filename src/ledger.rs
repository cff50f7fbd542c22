//! The journal and its replayed state, kept in step: every append is applied to the
//! state at once, together with whatever other processes appended before it, so the
//! state is always the journal's in `seq` order.
//!
//! Task ids whose state changed are collected as *dirty*, so the daemon's scheduler
//! reacts to work from any source (a scan, a commit, `baton retry` in another process)
//! in one way: by looking at what changed.

use anyhow::Result;

use crate::journal::{Appender, Entry, Record, State};
use crate::workspace::Workspace;

pub struct Ledger {
    appender: Appender,
    pub state: State,
    dirty: Vec<String>,
}

impl Ledger {
    /// Opens the journal and replays all of it.
    pub fn open(ws: &Workspace) -> Result<Ledger> {
        let mut appender = Appender::open(ws)?;
        let entries = appender.poll()?;
        let state = State::replay(&entries);
        Ok(Ledger {
            appender,
            state,
            dirty: Vec::new(),
        })
    }

    /// Appends `records` (fsynced when `durable`) and applies them; returns them.
    pub fn append(&mut self, records: Vec<Record>, durable: bool) -> Result<Vec<Entry>> {
        if records.is_empty() {
            self.refresh()?;
            return Ok(Vec::new());
        }
        let (written, foreign) = self.appender.append(records, durable)?;
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
