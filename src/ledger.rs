//! The journal and the state store, kept in step: every append is applied, together
//! with whatever other processes appended before it, so the state is always the
//! journal's in `seq` order. In memory the ledger keeps only the live work: the tasks
//! not done or dead. Everything else is asked of the store.
//!
//! A command's ledger writes each append to the store at once. The daemon's batches
//! them ([`Ledger::flush`], at most [`FLUSH_AFTER`] later): a store transaction per
//! record cost more CPU than the rest of a task's dispatch. Until a batch is written,
//! its entries answer for themselves: the tasks they touched are held in memory (live,
//! or settled), and their artifacts and rejections are looked up among them. Reports
//! read the journal past the store's stamp themselves, so they never see less.
//!
//! Task ids whose state changed are collected as *dirty*, so the daemon's scheduler
//! reacts to work from any source (a scan, a commit, `baton retry` in another process)
//! in one way: by looking at what changed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::journal::{
    Appender, ArtifactInfo, Durability, Entry, History, Record, TaskId, TaskInfo,
};
use crate::store::Store;
use crate::workspace::{RelPath, Workspace};

/// The longest the daemon's ledger keeps entries from the store.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(25);

/// Entries kept from the store at most, whatever their age.
const MOST_PENDING: usize = 1024;

pub(crate) struct Ledger {
    appender: Appender,
    store: Store,
    /// The tasks not done or dead, as of the last entry applied.
    live: HashMap<TaskId, TaskInfo>,
    /// Entries applied in memory and not yet to the store (the daemon's, batched), and
    /// since when.
    pending: Vec<Entry>,
    pending_since: Option<Instant>,
    /// Tasks those entries made done or dead: out of `live`, not yet in the store.
    settled: HashMap<TaskId, TaskInfo>,
    /// Whether appends are batched ([`Ledger::flush`]) or written to the store at once.
    batched: bool,
    /// Tasks touched by records applied since the scheduler last asked.
    dirty: Vec<TaskId>,
    /// The journal segment written to when last asked ([`Ledger::take_sealed`]).
    segment_base: u64,
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
    /// appends do not ring the doorbell, and seal journal segments at `segment_size`.
    /// Its writes to the store are batched: the daemon calls [`Ledger::flush`].
    pub(crate) fn open(ws: &Workspace, segment_size: u64) -> Result<Ledger> {
        let mut ledger = Ledger::open_with(ws, |a| a.quiet().segment_size(segment_size))?;
        ledger.batched = true;
        Ok(ledger)
    }

    /// Like [`Ledger::open`], for a command: each append rings the daemon's doorbell,
    /// and is written to the store at once.
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
        let segment_base = appender.segment_base();
        let mut ledger = Ledger {
            appender,
            store,
            live,
            pending: Vec::new(),
            pending_since: None,
            settled: HashMap::new(),
            batched: false,
            dirty: Vec::new(),
            segment_base,
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

    /// Syncs what was appended so far: the segment being written (those before it were
    /// synced as they were sealed).
    /// Why nothing can be journalled any more, if the journal was deleted under it.
    pub(crate) fn journal_gone(&self) -> Option<String> {
        self.appender.gone()
    }

    pub(crate) fn syncer(&self) -> Syncer {
        Syncer(self.appender.file())
    }

    /// Whether a journal segment was sealed since the last call.
    pub(crate) fn take_sealed(&mut self) -> bool {
        let base = self.appender.segment_base();
        std::mem::replace(&mut self.segment_base, base) != base
    }

    fn apply(&mut self, entries: &[Entry]) -> Result<()> {
        self.dirty
            .extend(entries.iter().filter_map(|e| e.record.task()).cloned());
        if !self.batched {
            return self
                .store
                .apply(entries, self.appender.offset(), &mut self.live);
        }
        for entry in entries {
            self.apply_in_memory(entry)?;
        }
        self.pending.extend(entries.iter().cloned());
        self.pending_since.get_or_insert_with(Instant::now);
        if self.pending.len() >= MOST_PENDING {
            if let Err(e) = self.flush() {
                // The journal has them: kept, and tried again at the next flush.
                tracing::warn!("writing the state store: {e:#}");
            }
        }
        Ok(())
    }

    /// Moves the task of `entry` on in memory. A task neither live nor settled is read
    /// from the store, which may be ahead of this entry (another process applied it):
    /// the task's `seq` keeps what is in from being applied twice.
    fn apply_in_memory(&mut self, entry: &Entry) -> Result<()> {
        let store = &self.store;
        crate::store::advance(&mut self.live, &mut self.settled, entry, |id| {
            Ok(store.task(id)?.map(Cow::into_owned))
        })?;
        Ok(())
    }

    /// Writes the batched entries to the store, in one transaction.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The store moves each task on from its own row: `live` is ahead already.
        self.store
            .apply(&self.pending, self.appender.offset(), &mut HashMap::new())?;
        self.pending.clear();
        self.pending_since = None;
        self.settled.clear();
        Ok(())
    }

    /// When the batched entries are due in the store, if there are any.
    pub(crate) fn flush_due(&self) -> Option<Instant> {
        self.pending_since.map(|since| since + FLUSH_AFTER)
    }

    /// The tasks not done or dead: the daemon's live work.
    pub(crate) fn live(&self) -> impl Iterator<Item = &TaskInfo> {
        self.live.values()
    }

    /// The store, for what the live set does not hold. In the daemon it may lag by what
    /// [`Ledger::flush`] has not written yet: ask the ledger itself ([`History`]) for
    /// anything that changes while it runs.
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
        match self.live.get(id).or_else(|| self.settled.get(id)) {
            Some(t) => Ok(Some(Cow::Borrowed(t))),
            None => self.store.task(id),
        }
    }

    fn children(&self, id: &TaskId) -> Result<Vec<TaskInfo>> {
        let mut children = self.store.children(id)?;
        for c in &mut children {
            if let Some(t) = self.live.get(&c.id).or_else(|| self.settled.get(&c.id)) {
                *c = t.clone();
            }
        }
        // Queued since the last flush: not in the store yet.
        for entry in &self.pending {
            // The task's own parent, set when first queued (a requeue does not move it).
            if let Record::Queued { task, .. } = &entry.record {
                let t = self.live.get(task).or_else(|| self.settled.get(task));
                if let Some(t) = t.filter(|t| t.parent.as_ref() == Some(id)) {
                    if !children.iter().any(|c| c.id == t.id) {
                        children.push(t.clone());
                    }
                }
            }
        }
        Ok(children)
    }

    fn artifact(&self, path: &RelPath) -> Result<Option<ArtifactInfo>> {
        for entry in self.pending.iter().rev() {
            if let Record::Artifact {
                path: p,
                hash,
                by,
                task,
                ..
            } = &entry.record
            {
                if p == path {
                    return Ok(Some(ArtifactInfo {
                        hash: hash.clone(),
                        attribution: crate::journal::Attribution {
                            by: by.clone(),
                            task: task.clone(),
                        },
                    }));
                }
            }
        }
        self.store.artifact(path)
    }

    fn rejection(&self, path: &RelPath, hash: &str) -> Result<Option<String>> {
        for entry in self.pending.iter().rev() {
            if let Record::Rejected {
                path: p,
                hash: h,
                error,
            } = &entry.record
            {
                if p == path && h.as_deref().unwrap_or("") == hash {
                    return Ok(Some(error.clone()));
                }
            }
        }
        self.store.rejection(path, hash)
    }
}

impl Drop for Ledger {
    /// What is batched goes to the store (the next opener would apply it anyway).
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(
                "writing the state store: {e:#}; the next start applies it from the journal"
            );
        }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::journal::{State, read_all};
    use crate::store::tests::{TASKS, history_agrees, record, task};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The daemon's batched ledger, flushed at random points, with another process
        /// appending and catching the store up in between, answers as a full replay.
        #[test]
        fn the_batched_ledger_answers_as_a_full_replay(
            chunks in proptest::collection::vec(proptest::collection::vec(record(), 1..6), 1..12),
            steps in proptest::collection::vec(0..4u8, 12),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let ws = Workspace::at(tmp.path().to_path_buf());
            let mut ledger = Ledger::open(&ws, crate::journal::DEFAULT_SEGMENT_SIZE).unwrap();
            let mut other = Appender::open_at_end(&ws).unwrap();
            for (i, chunk) in chunks.into_iter().enumerate() {
                match steps[i] {
                    0 => { ledger.append(chunk).unwrap(); }
                    1 => {
                        ledger.append(chunk).unwrap();
                        ledger.flush().unwrap();
                    }
                    2 => {
                        // Another process appends, and a report catches the store up.
                        other.append(chunk, Durability::Buffered).unwrap();
                        Store::open(&ws).unwrap();
                        ledger.refresh().unwrap();
                    }
                    _ => {
                        other.append(chunk, Durability::Buffered).unwrap();
                        ledger.refresh().unwrap();
                    }
                }
                let state = State::replay(&read_all(&ws).unwrap());
                history_agrees(&ledger, &state);
                let mut live: Vec<&TaskId> = ledger.live().map(|t| &t.id).collect();
                live.sort();
                let mut want: Vec<&TaskId> = state
                    .tasks
                    .values()
                    .filter(|t| !t.status.is_final())
                    .map(|t| &t.id)
                    .collect();
                want.sort();
                prop_assert_eq!(live, want);
            }
            ledger.flush().unwrap();
            drop(ledger);
            let state = State::replay(&read_all(&ws).unwrap());
            let store = Store::open(&ws).unwrap();
            for t in 0..TASKS.len() {
                let id = task(t);
                let stored = store.task(&id).unwrap().map(Cow::into_owned);
                prop_assert_eq!(stored.as_ref(), state.tasks.get(&id));
            }
        }
    }
}
