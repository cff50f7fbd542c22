//! The scheduler: one task that owns the daemon's decisions.
//!
//! It turns file hints into ingests (after the settle time where a file was written in
//! place), keeps per-agent queues within each agent's concurrency, starts runners,
//! times retries, and stops in order. It learns about tasks only from the ledger's dirty
//! list, whatever queued them: a scan, a commit, or `baton retry` in another process.
//! Blocking work (hashing, walking, committing) happens on tokio's blocking pool, at most
//! [`INGEST_WORKERS`] ingest jobs at a time, so a burst of files cannot flood it.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::ingest::{self, Ingested};
use super::runner::{self, Ended, Job};
use super::watcher::{Flags, Hint, Watcher};
use super::{Ctx, Summary};
use crate::index::writer::IndexOp;
use crate::journal::{Status, TaskStatus};
use crate::workspace::RelPath;

/// Blocking ingest jobs at once; each takes a batch of paths.
const INGEST_WORKERS: usize = 2;
const INGEST_BATCH: usize = 64;

/// Work for an ingest worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum IngestJob {
    /// One artifact that is ready.
    Path(RelPath),
    /// Walk a folder (`None`: every stage) and ingest what is there.
    Walk(Option<RelPath>),
}

/// What a settle timer is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Due {
    /// A file that was written in place, or found busy: look again.
    Path(RelPath),
    /// A folder that appeared: scan it once more, after its watch surely exists.
    Folder(RelPath),
}

enum Msg {
    /// An ingest worker made progress (tasks may have been queued).
    Progress,
    /// An ingest worker finished; the paths were busy (open for writing).
    Ingested {
        busy: Vec<RelPath>,
    },
    /// A runner's agent process (and its group) ended: its concurrency slot is free,
    /// while the attempt settles.
    Exited {
        task: String,
    },
    Ended(Ended),
}

/// Deadlines by key, earliest first.
struct Deadlines<K> {
    by_time: BTreeSet<(Instant, K)>,
    by_key: HashMap<K, Instant>,
}

impl<K: Ord + Hash + Clone> Deadlines<K> {
    fn new() -> Self {
        Deadlines {
            by_time: BTreeSet::new(),
            by_key: HashMap::new(),
        }
    }
    fn set(&mut self, key: K, at: Instant) {
        self.remove(&key);
        self.by_time.insert((at, key.clone()));
        self.by_key.insert(key, at);
    }
    fn remove(&mut self, key: &K) {
        if let Some(at) = self.by_key.remove(key) {
            self.by_time.remove(&(at, key.clone()));
        }
    }
    fn contains(&self, key: &K) -> bool {
        self.by_key.contains_key(key)
    }
    fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }
    fn pop_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at > now {
                break;
            }
            let (_, key) = self.by_time.pop_first().expect("first exists");
            self.by_key.remove(&key);
            due.push(key);
        }
        due
    }
    fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

pub struct Scheduler {
    ctx: Arc<Ctx>,
    watcher: Watcher,
    flags: Arc<Flags>,
    hints: mpsc::Receiver<Hint>,
    inbox: mpsc::UnboundedReceiver<Msg>,
    inbox_tx: mpsc::UnboundedSender<Msg>,
    settling: Deadlines<Due>,
    retries: Deadlines<String>,
    ingest_queue: VecDeque<IngestJob>,
    ingest_queued: HashSet<IngestJob>,
    ingest_workers: usize,
    queues: HashMap<String, VecDeque<String>>,
    queued: HashSet<String>,
    /// Our runners: task → agent.
    running: HashMap<String, String>,
    /// Agent processes alive (or about to start), per agent: what `concurrency` limits.
    /// A slot is freed when the process ends, so the next agent starts while the last
    /// attempt is still being committed.
    running_per_agent: HashMap<String, usize>,
    /// Running tasks whose process has ended (their slot is already free).
    exited: HashSet<String>,
    stop_tx: watch::Sender<bool>,
    stopping: bool,
    /// Set once the tasks open at start have been looked at.
    started: bool,
    once: bool,
    summary: Summary,
}

impl Scheduler {
    pub fn new(
        ctx: Arc<Ctx>,
        watcher: Watcher,
        flags: Arc<Flags>,
        hints: mpsc::Receiver<Hint>,
        once: bool,
    ) -> Self {
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let (stop_tx, _) = watch::channel(false);
        Scheduler {
            ctx,
            watcher,
            flags,
            hints,
            inbox,
            inbox_tx,
            settling: Deadlines::new(),
            retries: Deadlines::new(),
            ingest_queue: VecDeque::new(),
            ingest_queued: HashSet::new(),
            ingest_workers: 0,
            queues: HashMap::new(),
            queued: HashSet::new(),
            running: HashMap::new(),
            running_per_agent: HashMap::new(),
            exited: HashSet::new(),
            stop_tx,
            stopping: false,
            started: false,
            once,
            summary: Summary::default(),
        }
    }

    /// Runs until `shutdown` resolves (then stops runners and waits for them) or, with
    /// `once`, until nothing is pending.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Summary {
        let open: Vec<String> = {
            let mut ledger = self.ctx.ledger();
            // Joins a crash kept from being queued (between the last child and the join).
            let joins = crate::join::all_due(&ledger.state);
            if let Err(e) = ledger.append(joins) {
                tracing::error!("queuing joins: {e:#}");
            }
            ledger
                .state
                .order
                .iter()
                .filter(|id| !ledger.state.tasks[*id].status.is_final())
                .cloned()
                .collect()
        };
        for id in open {
            self.consider(&id);
        }
        self.started = true;
        self.enqueue_ingest(IngestJob::Walk(None));
        tokio::pin!(shutdown);
        let mut shutdown_fired = false;
        loop {
            self.drain_dirty();
            if !self.stopping {
                self.start_ingests();
                self.dispatch();
            }
            if self.stopping && self.running.is_empty() && self.ingest_workers == 0 {
                break;
            }
            if self.once && self.idle() {
                break;
            }
            let next = [self.settling.next(), self.retries.next()]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                biased;
                _ = &mut shutdown, if !shutdown_fired => {
                    shutdown_fired = true;
                    self.begin_stop();
                }
                Some(msg) = self.inbox.recv() => self.on_msg(msg),
                Some(hint) = self.hints.recv(), if !self.stopping => self.on_hint(hint),
                _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => self.on_timers(),
            }
            if self.flags.overflow.swap(false, Ordering::SeqCst) {
                tracing::warn!("file events were lost (queue overflow); rescanning the stages");
                self.enqueue_ingest(IngestJob::Walk(None));
                self.ctx.index.send(IndexOp::CatchUp);
            }
        }
        self.summary
    }

    fn begin_stop(&mut self) {
        tracing::info!(
            running = self.running.len(),
            "stopping: running agents get SIGTERM; their tasks run again at the next start"
        );
        self.stopping = true;
        let _ = self.stop_tx.send(true);
    }

    /// Nothing queued, running, settling, being ingested or waiting for a retry.
    fn idle(&self) -> bool {
        self.ingest_workers == 0
            && self.ingest_queue.is_empty()
            && self.settling.is_empty()
            && self.running.is_empty()
            && self.queued.is_empty()
            && self.retries.is_empty()
    }

    fn on_hint(&mut self, hint: Hint) {
        let settle = self.ctx.cfg.settle;
        match hint {
            Hint::Renamed(path) => {
                tracing::debug!(%path, "hint: renamed in");
                self.settling.remove(&Due::Path(path.clone()));
                self.enqueue_ingest(IngestJob::Path(path));
            }
            Hint::Closed(path) => self.settling.set(Due::Path(path), Instant::now() + settle),
            Hint::Written(path) => {
                let due = Due::Path(path);
                if self.settling.contains(&due) {
                    self.settling.set(due, Instant::now() + settle);
                }
            }
            Hint::Removed(path) => {
                self.settling.remove(&Due::Path(path.clone()));
                self.ctx.index.send(IndexOp::Remove(path));
            }
            Hint::Folder(dir) => {
                self.enqueue_ingest(IngestJob::Walk(Some(dir.clone())));
                let again = Instant::now() + settle.max(Duration::from_millis(50));
                self.settling.set(Due::Folder(dir), again);
            }
            Hint::Stage(stage) => {
                if let Err(e) = self.watcher.watch_stage(&stage) {
                    tracing::warn!("{e:#}");
                }
                if let Ok(dir) = RelPath::new(&stage) {
                    self.enqueue_ingest(IngestJob::Walk(Some(dir)));
                }
            }
            Hint::Rescan => {
                self.enqueue_ingest(IngestJob::Walk(None));
                self.ctx.index.send(IndexOp::CatchUp);
            }
            Hint::Journal => {
                self.flags.journal_seen();
                if let Err(e) = self.ctx.ledger().refresh() {
                    tracing::warn!("reading the journal: {e:#}");
                }
            }
        }
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        for due in self.settling.pop_due(now) {
            match due {
                Due::Path(path) => self.enqueue_ingest(IngestJob::Path(path)),
                Due::Folder(dir) => self.enqueue_ingest(IngestJob::Walk(Some(dir))),
            }
        }
        for id in self.retries.pop_due(now) {
            self.push_queue(&id);
        }
    }

    fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Progress => {}
            Msg::Ingested { busy } => {
                self.ingest_workers -= 1;
                let again = Instant::now() + self.ctx.cfg.settle.max(Duration::from_millis(20));
                for path in busy {
                    self.settling.set(Due::Path(path), again);
                }
            }
            Msg::Exited { task } => {
                if let Some(agent) = self.running.get(&task) {
                    if self.exited.insert(task) {
                        self.free_slot(&agent.clone());
                    }
                }
            }
            Msg::Ended(ended) => {
                self.running.remove(&ended.task);
                if !self.exited.remove(&ended.task) {
                    self.free_slot(&ended.agent);
                }
                match ended.status {
                    Some(Status::Done) => self.summary.done += 1,
                    Some(Status::Dead) => self.summary.dead += 1,
                    Some(Status::Held) => self.summary.held += 1,
                    Some(Status::Failed) => self.summary.failed_attempts += 1,
                    None => {}
                }
                // After a panic the task is left for the next start, not retried in a loop.
                if !self.stopping && !ended.panicked {
                    self.consider(&ended.task);
                }
            }
        }
    }

    fn free_slot(&mut self, agent: &str) {
        if let Some(n) = self.running_per_agent.get_mut(agent) {
            *n -= 1;
        }
    }

    /// Considers every task whose state changed, including those that considering
    /// changes in turn (a task that ends can queue its delegator's join).
    fn drain_dirty(&mut self) {
        loop {
            let dirty = self.ctx.ledger().take_dirty();
            if dirty.is_empty() {
                return;
            }
            for id in dirty {
                self.consider(&id);
            }
        }
    }

    /// Brings one task's place in the scheduler in line with its journal state.
    fn consider(&mut self, id: &str) {
        if self.running.contains_key(id) {
            return;
        }
        let (status, retry_at) = {
            let ledger = self.ctx.ledger();
            match ledger.state.tasks.get(id) {
                Some(t) => (t.status, t.retry_at),
                None => return,
            }
        };
        match status {
            TaskStatus::Queued => {
                self.retries.remove(&id.to_string());
                self.push_queue(id);
            }
            // Without a runner of ours: left by an earlier daemon, at start (recovery
            // stopped its process group), so it runs again. Later, only another process
            // commits (`baton approve`): leave it to that.
            TaskStatus::Running | TaskStatus::Committing => {
                if !self.started {
                    self.push_queue(id);
                }
            }
            TaskStatus::Failed => {
                let wait = retry_at
                    .and_then(|at| at.duration_since(SystemTime::now()).ok())
                    .unwrap_or_default();
                self.retries.set(id.to_string(), Instant::now() + wait);
            }
            TaskStatus::Held => {
                self.retries.remove(&id.to_string());
            }
            TaskStatus::Done | TaskStatus::Dead => {
                self.retries.remove(&id.to_string());
                let mut ledger = self.ctx.ledger();
                let joins = crate::join::due(&ledger.state, id);
                if !joins.is_empty() {
                    if let Err(e) = ledger.append(joins) {
                        tracing::error!(task = id, "queuing a join: {e:#}");
                    }
                }
            }
        }
    }

    fn push_queue(&mut self, id: &str) {
        if self.queued.contains(id) || self.running.contains_key(id) {
            return;
        }
        let agent = match self.ctx.ledger().state.tasks.get(id) {
            Some(t) => t.agent.clone(),
            None => return,
        };
        if !self.ctx.cfg.agents.contains_key(&agent) {
            tracing::warn!(
                task = id,
                agent,
                "the task's agent is no longer in baton.toml; it stays queued"
            );
            return;
        }
        self.queued.insert(id.to_string());
        self.queues
            .entry(agent)
            .or_default()
            .push_back(id.to_string());
    }

    fn dispatch(&mut self) {
        for (agent, queue) in self.queues.iter_mut() {
            let limit = self.ctx.cfg.agents.get(agent).map_or(0, |a| a.concurrency);
            let running = self.running_per_agent.entry(agent.clone()).or_default();
            while *running < limit {
                let Some(id) = queue.pop_front() else { break };
                self.queued.remove(&id);
                let task = {
                    let ledger = self.ctx.ledger();
                    match ledger.state.tasks.get(&id) {
                        Some(t)
                            if !matches!(
                                t.status,
                                TaskStatus::Done | TaskStatus::Dead | TaskStatus::Held
                            ) =>
                        {
                            t.clone()
                        }
                        _ => continue,
                    }
                };
                tracing::debug!(task = %id, "dispatching");
                let job = Job {
                    attempt: task.attempt + 1,
                    task,
                };
                *running += 1;
                self.running.insert(id.clone(), agent.clone());
                let ctx = self.ctx.clone();
                let tx = self.inbox_tx.clone();
                let stop = self.stop_tx.subscribe();
                tokio::spawn(async move {
                    let task = job.task.clone();
                    let (id, agent) = (task.id.clone(), task.agent.clone());
                    // A runner that panics must still free its slot, or the scheduler
                    // would wait for it forever.
                    let exited = {
                        let (tx, task) = (tx.clone(), id.clone());
                        move || {
                            let _ = tx.send(Msg::Exited { task });
                        }
                    };
                    let runner = runner::run(ctx.clone(), job, stop, exited);
                    let ended = match tokio::spawn(runner).await {
                        Ok(ended) => ended,
                        Err(e) => {
                            tracing::error!(task = %task.id, "the runner failed: {e}");
                            let error = format!("internal error: the runner failed: {e}");
                            let attempt = task.attempt + 1;
                            let settled = tokio::task::spawn_blocking(move || {
                                super::commit::settle_failure(&ctx, &task, attempt, None, error, 0)
                            })
                            .await;
                            let status = match settled {
                                Ok(Ok(status)) => Some(status),
                                _ => None,
                            };
                            Ended {
                                task: id,
                                agent,
                                status,
                                panicked: status.is_none(),
                            }
                        }
                    };
                    let _ = tx.send(Msg::Ended(ended));
                });
            }
        }
    }

    fn enqueue_ingest(&mut self, job: IngestJob) {
        if self.ingest_queued.insert(job.clone()) {
            self.ingest_queue.push_back(job);
        }
    }

    fn start_ingests(&mut self) {
        while self.ingest_workers < INGEST_WORKERS && !self.ingest_queue.is_empty() {
            let n = self.ingest_queue.len().min(INGEST_BATCH);
            let batch: Vec<IngestJob> = self.ingest_queue.drain(..n).collect();
            for job in &batch {
                self.ingest_queued.remove(job);
            }
            self.ingest_workers += 1;
            let ctx = self.ctx.clone();
            let tx = self.inbox_tx.clone();
            tokio::task::spawn_blocking(move || {
                // Reports back even if ingesting panics, so the worker count stays true.
                let mut report = IngestReport {
                    tx: tx.clone(),
                    busy: Vec::new(),
                };
                report.busy = ingest_batch(&ctx, batch, &tx);
            });
        }
    }
}

/// Sends `Msg::Ingested` when dropped: at the end of an ingest job, or when it panics.
struct IngestReport {
    tx: mpsc::UnboundedSender<Msg>,
    busy: Vec<RelPath>,
}

impl Drop for IngestReport {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Ingested {
            busy: std::mem::take(&mut self.busy),
        });
    }
}

/// Ingests a batch of jobs, walking folders; returns the paths still being written.
fn ingest_batch(ctx: &Ctx, batch: Vec<IngestJob>, tx: &mpsc::UnboundedSender<Msg>) -> Vec<RelPath> {
    let mut busy = Vec::new();
    // Each path with whether the index is to hear of it. A walk of every stage (at start,
    // after lost events) comes with a full catch-up of the index, which compares every
    // file itself: an op per file on top flooded the index's queue at each start (39,000
    // files: seven overflows, each a further catch-up) and kept a new file waiting 1 s.
    let mut paths: VecDeque<(RelPath, bool)> = VecDeque::new();
    for job in batch {
        match job {
            IngestJob::Path(p) => paths.push_back((p, true)),
            IngestJob::Walk(dir) => {
                let tell_index = dir.is_some();
                let found = super::reconcile::list(ctx, dir.as_ref());
                paths.extend(found.into_iter().map(|p| (p, tell_index)));
            }
        }
    }
    while let Some((path, tell_index)) = paths.pop_front() {
        tracing::debug!(%path, "ingesting");
        match ingest::ingest(ctx, &path) {
            Ok(Ingested::Handled { journaled }) => {
                tracing::debug!(%path, "ingested");
                if tell_index {
                    ctx.index.send(IndexOp::Upsert(path.clone()));
                }
                if journaled {
                    // New tasks, maybe: wake the scheduler (for a known version, no need;
                    // at a start over 100,000 files that was 300,000 wake-ups).
                    let _ = tx.send(Msg::Progress);
                }
            }
            Ok(Ingested::Busy) => busy.push(path),
            Ok(Ingested::Folder) => {
                let found = super::reconcile::list(ctx, Some(&path));
                paths.extend(found.into_iter().map(|p| (p, true)));
            }
            Ok(Ingested::Nothing) => {}
            Err(e) => tracing::warn!(path = %path, "could not ingest: {e:#}"),
        }
    }
    busy
}
