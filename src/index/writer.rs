//! The daemon's index writer: one thread that owns the workspace's one `IndexWriter`,
//! fed by a bounded channel, committing in batches so an artifact is searchable well
//! within a second of arriving (DESIGN §8).
//!
//! Policy when the channel is full: the sender never blocks (it is the scheduler); it
//! raises a flag instead, and the writer catches the whole index up with the stages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::store::{FileRead, Store};
use crate::journal::Attribution;
use crate::workspace::{RelPath, Workspace};

/// Commit at the latest this long after the first uncommitted change...
const BATCH_WINDOW: Duration = Duration::from_millis(800);
/// ...or as soon as no change arrived for this long. Not much shorter: briefs arriving
/// a little further apart would each get a commit (an fsync, new segment files) just as
/// the next one is dispatched, delaying it (bench/dispatch.sh, latency p99).
const IDLE: Duration = Duration::from_millis(50);
const QUEUE: usize = 4096;

pub(crate) enum IndexOp {
    /// The file at this path arrived or changed (or was removed: then it is deleted),
    /// with its content if the sender had it at hand.
    Upsert(RelPath, Option<Box<FileRead>>),
    /// This path, and everything under it if it was a folder, is gone.
    Remove(RelPath),
    /// Events were lost: compare the whole index with the stages.
    CatchUp,
    /// An edited config names these stages: catch up with them from now on.
    Stages(Vec<String>),
    /// Commit what is pending and stop.
    Stop,
}

/// Authorship lookup for the daemon: (path, hash) → who wrote it.
pub(crate) type Who = Arc<dyn Fn(&RelPath, &str) -> Attribution + Send + Sync>;

/// The daemon's side of the channel.
#[derive(Clone)]
pub(crate) struct IndexHandle {
    tx: SyncSender<IndexOp>,
    overflow: Arc<AtomicBool>,
}

impl IndexHandle {
    pub(crate) fn send(&self, op: IndexOp) {
        match self.tx.try_send(op) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => self.overflow.store(true, Ordering::SeqCst),
        }
    }

    /// Asks the writer to commit and stop (waits for room in the channel).
    pub(crate) fn stop(&self) {
        let _ = self.tx.send(IndexOp::Stop);
    }
}

/// Starts the writer thread: it opens the index, takes the writer (waiting while a
/// `baton search` or `baton index` holds it), catches up with the stages, then serves.
pub(crate) fn spawn(
    ws: Workspace,
    stages: Vec<String>,
    max_size: u64,
    who: Who,
) -> Result<(IndexHandle, JoinHandle<()>)> {
    let (tx, rx) = sync_channel(QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let flag = overflow.clone();
    let thread = std::thread::Builder::new()
        .name("baton-index".into())
        .spawn(move || {
            // Indexing yields to dispatching: a lower priority for this thread, which
            // tantivy's indexing thread (spawned from it) inherits. Searchability can lag
            // a little in a burst; agents must not.
            crate::sys::lower_thread_priority(10);
            // An index deleted under the daemon fails its next commit: it is built
            // again, from the stages, instead of leaving search finding nothing. One that
            // cannot be built is tried again less and less often.
            let mut wait = Duration::from_millis(100);
            while let Err(e) = serve(&ws, &stages, max_size, &*who, &rx, &flag) {
                if super::store::index_dir(&ws).join("meta.json").exists() {
                    tracing::error!(
                        "the search index writer stopped: {e:#}; `baton search` catches up without it"
                    );
                    return;
                }
                tracing::warn!("the search index was deleted ({e:#}); rebuilding it in {wait:?}");
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        })
        .context("starting the search index's writer thread")?;
    Ok((IndexHandle { tx, overflow }, thread))
}

fn serve(
    ws: &Workspace,
    stages: &[String],
    max_size: u64,
    who: &(dyn Fn(&RelPath, &str) -> Attribution + Send + Sync),
    rx: &Receiver<IndexOp>,
    overflow: &AtomicBool,
) -> Result<()> {
    let store = Store::open(ws)?;
    let mut stages = stages.to_vec();
    let stages = &mut stages;
    let mut writer = loop {
        match store.daemon_writer() {
            Ok(w) => break w,
            Err(e) => {
                tracing::debug!("waiting for the index writer: {e:#}");
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(IndexOp::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                    // Ops that arrive meanwhile are covered by the catch-up below.
                    _ => {}
                }
            }
        }
    };
    let reader = store.reader()?;
    let report = store.catch_up_with(&mut writer, ws, stages, who, max_size)?;
    writer.commit()?;
    reader.reload()?;
    tracing::info!(
        checked = report.checked,
        updated = report.updated,
        removed = report.removed,
        "search index up to date"
    );

    let mut first_pending: Option<Instant> = None;
    loop {
        let wait = match first_pending {
            Some(at) => IDLE.min(BATCH_WINDOW.saturating_sub(at.elapsed())),
            None => Duration::from_secs(3600),
        };
        let mut stop = false;
        let mut idle = false;
        let mut catch_up = false;
        match rx.recv_timeout(wait) {
            Ok(IndexOp::Upsert(path, read)) => {
                let searcher = reader.searcher();
                if store.upsert_if_changed(
                    &mut writer,
                    &searcher,
                    ws,
                    &path,
                    read,
                    who,
                    max_size,
                )? {
                    first_pending.get_or_insert_with(Instant::now);
                }
            }
            Ok(IndexOp::Remove(path)) => {
                store.remove(&mut writer, &path)?;
                first_pending.get_or_insert_with(Instant::now);
            }
            Ok(IndexOp::CatchUp) => catch_up = true,
            Ok(IndexOp::Stages(new)) => *stages = new,
            Ok(IndexOp::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
            Err(RecvTimeoutError::Timeout) => idle = true,
        }
        if overflow.swap(false, Ordering::SeqCst) || catch_up {
            tracing::info!("catching the search index up with the stages");
            store.catch_up_with(&mut writer, ws, stages, who, max_size)?;
            first_pending.get_or_insert_with(Instant::now);
        }
        let due = first_pending.is_some_and(|at| idle || stop || at.elapsed() >= BATCH_WINDOW);
        if due {
            writer.commit()?;
            reader.reload()?;
            first_pending = None;
        }
        if stop {
            return Ok(());
        }
    }
}
