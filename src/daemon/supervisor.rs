//! The one loop that applies the scheduler's decisions: it waits for hints, timers,
//! messages and ending tasks, hands each to the [`Scheduler`], and does what it decided.
//! It supervises runners and ingest workers in `JoinSet`s: a runner that panics is
//! still recorded as a failed attempt and frees its slot, and an ingest worker that
//! panics still counts as done.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::context::{Ctx, Setup};
use super::ingest::ingest_batch;
use super::launch::Launcher;
use super::reconcile::{self, Folders};
use super::runner::{self, Ended, Job};
use super::scheduler::{Action, Scheduler, Summary, TaskView, Until};
use super::settle::record_failure;
use super::watcher::{Flags, Hint, Watcher};
use crate::config::Config;
use crate::index::writer::IndexOp;
use crate::journal::{Durability, History, Record, TaskId, TaskInfo};
use crate::workspace::RelPath;

/// What runners and ingest workers tell the loop before they end.
enum Msg {
    /// An ingest worker journalled something: tasks may have been queued.
    Progress,
    /// A runner's agent process group is gone: its slot is free while it settles.
    Exited(TaskId),
    /// A reconcile pass found these folders changed; its state comes back with them.
    Reconciled(Vec<RelPath>, Folders),
}

/// A runner in the `JoinSet`, for the record if it panics.
struct Running {
    task: TaskInfo,
    attempt: u32,
    /// The setup it ran by.
    setup: Arc<Setup>,
    /// This is the job recording an earlier runner's panic: if it panics too, the task
    /// is left for the next start, never retried in a loop.
    recovering: bool,
}

struct Supervisor {
    ctx: Arc<Ctx>,
    /// Decides; this loop applies what it decides.
    scheduler: Scheduler,
    /// Told to watch a stage folder that appeared.
    watcher: Watcher,
    /// Raised by the watcher's callback: events lost, the journal rung.
    flags: Arc<Flags>,
    /// Messages from runners and ingest workers; at most one per ingested path and per
    /// attempt, so unbounded.
    inbox_tx: mpsc::UnboundedSender<Msg>,
    /// Set once, at shutdown: every runner stops its agent.
    stop_tx: watch::Sender<bool>,
    /// One per attempt; a panic surfaces as a `JoinError` here.
    runners: JoinSet<Ended>,
    /// By the runner's tokio task id.
    running: HashMap<tokio::task::Id, Running>,
    /// Each running task's cancel switch, for `baton cancel`.
    cancels: HashMap<TaskId, watch::Sender<bool>>,
    /// Each returns the paths still being written.
    ingests: JoinSet<Vec<RelPath>>,
    /// The ledger's batched writes to the state store, at most one at a time.
    flushes: JoinSet<()>,
    /// The folders' mtimes for the periodic reconcile; `None` while a pass runs.
    folders: Option<Folders>,
    /// Why the daemon stops by itself.
    fatal: Option<String>,
}

/// Runs until `shutdown` resolves (then stops runners and waits for them) or, with
/// [`Until::Idle`], until nothing is pending.
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    watcher: Watcher,
    flags: Arc<Flags>,
    mut hints: mpsc::Receiver<Hint>,
    until: Until,
    shutdown: impl Future<Output = ()>,
) -> Summary {
    let (inbox_tx, mut inbox) = mpsc::unbounded_channel();
    let mut s = Supervisor {
        scheduler: Scheduler::new(&ctx.setup().cfg, until),
        ctx,
        watcher,
        flags,
        inbox_tx,
        stop_tx: watch::channel(false).0,
        runners: JoinSet::new(),
        running: HashMap::new(),
        cancels: HashMap::new(),
        ingests: JoinSet::new(),
        flushes: JoinSet::new(),
        folders: Some(Folders::default()),
        fatal: None,
    };
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    let open = s.open_tasks();
    s.scheduler.begin(open);
    tokio::pin!(shutdown);
    let mut shutdown_fired = false;
    loop {
        s.apply_decisions();
        if s.scheduler.finished() {
            break;
        }
        let next = s.scheduler.next_deadline();
        let flush_at = s.ctx.ledger.lock().flush_due();
        tokio::select! {
            biased;
            _ = &mut shutdown, if !shutdown_fired => {
                shutdown_fired = true;
                s.scheduler.begin_stop();
            }
            Some(msg) = inbox.recv() => match msg {
                Msg::Progress => {}
                Msg::Exited(task) => s.scheduler.on_exited(&task),
                Msg::Reconciled(changed, folders) => {
                    s.folders = Some(folders);
                    s.scheduler.on_changed_folders(changed);
                }
            },
            _ = housekeeping.tick() => {
                ticks = ticks.wrapping_add(1);
                s.housekeeping(ticks);
            }
            Some(joined) = s.runners.join_next_with_id(), if !s.runners.is_empty() => {
                s.on_runner_joined(joined);
            }
            Some(joined) = s.ingests.join_next(), if !s.ingests.is_empty() => {
                let busy = joined.unwrap_or_else(|e| {
                    tracing::error!("an ingest worker failed: {e}");
                    Vec::new()
                });
                s.scheduler.on_ingested(busy);
            }
            Some(hint) = hints.recv(), if !s.scheduler.stopping() => s.scheduler.on_hint(hint),
            _ = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {
                s.scheduler.on_timers();
            }
            _ = tokio::time::sleep_until(
                flush_at.map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std)
            ), if flush_at.is_some() && s.flushes.is_empty() => {
                // A store transaction: on the blocking pool, not this thread.
                let ctx = s.ctx.clone();
                s.flushes.spawn_blocking(move || flush_ledger(&ctx));
            }
            Some(_) = s.flushes.join_next(), if !s.flushes.is_empty() => {}
        }
        if s.flags.overflow.swap(false, Ordering::SeqCst) {
            s.scheduler.on_lost_events();
        }
    }
    while s.flushes.join_next().await.is_some() {}
    let ctx = s.ctx.clone();
    let _ = tokio::task::spawn_blocking(move || flush_ledger(&ctx)).await;
    let mut summary = s.scheduler.summary();
    summary.fatal = s.fatal;
    summary
}

/// How often the daemon checks its journal is still there and reaps what its agents
/// orphaned; every [`reconcile::every`] ticks it also reconciles the stages.
const HOUSEKEEPING: std::time::Duration = std::time::Duration::from_secs(1);

impl Supervisor {
    fn housekeeping(&mut self, ticks: u32) {
        if self.fatal.is_none() {
            if let Some(gone) = self.ctx.ledger.lock().journal_gone() {
                tracing::error!("{gone}; stopping");
                self.fatal = Some(gone);
                self.scheduler.begin_stop();
                return;
            }
        }
        if self.scheduler.stopping() {
            return;
        }
        let ctx = self.ctx.clone();
        let due = ticks % reconcile::every().max(1) == 0;
        let folders = if due { self.folders.take() } else { None };
        let tx = self.inbox_tx.clone();
        tokio::task::spawn_blocking(move || {
            ctx.processes.reap();
            if let Some(mut folders) = folders {
                let stages = ctx.setup().cfg.stages.clone();
                let changed = folders.changed(&ctx.ws.root, &stages);
                if !changed.is_empty() {
                    tracing::debug!(folders = changed.len(), "reconcile: folders changed");
                }
                let _ = tx.send(Msg::Reconciled(changed, folders));
            }
        });
    }

    /// The tasks the journal leaves unfinished, in the order they were queued, after
    /// queuing the joins a crash kept from being queued (between a last child's commit
    /// and its delegator's join).
    fn open_tasks(&self) -> Vec<(TaskId, TaskView)> {
        flush_ledger(&self.ctx); // what follows asks the store itself
        let ids: Vec<TaskId> = {
            let mut ledger = self.ctx.ledger.lock();
            let joins = ledger.store().awaiting_joins().and_then(|waiting| {
                let max_depth = self.ctx.setup().cfg.max_depth;
                crate::join::due_among(&*ledger, &waiting, max_depth)
            });
            match joins {
                Ok(joins) => {
                    if let Err(e) = ledger.append(joins) {
                        tracing::error!("queuing joins: {e:#}");
                    }
                }
                Err(e) => tracing::error!("finding the joins due: {e:#}"),
            }
            // In the order they were first queued, as the store keeps it (the joins
            // just queued included).
            if let Err(e) = ledger.flush() {
                tracing::error!("writing the state store: {e:#}");
            }
            match ledger.store().unfinished() {
                Ok(tasks) => tasks.into_iter().map(|t| t.id).collect(),
                Err(e) => {
                    tracing::error!("listing the unfinished tasks: {e:#}");
                    ledger.live().map(|t| t.id.clone()).collect()
                }
            }
        };
        ids.into_iter()
            .filter_map(|id| Some((id.clone(), self.ctx.view(&id)?)))
            .collect()
    }

    /// Considers every task whose journal state changed and applies what the scheduler
    /// decides, until nothing more is decided (a task that ends can queue its
    /// delegator's join, which is considered in turn).
    fn apply_decisions(&mut self) {
        loop {
            let dirty = self.ctx.ledger.lock().take_dirty();
            for task in dirty {
                let view = self.ctx.view(&task);
                self.scheduler.consider(&task, view);
            }
            self.scheduler.step();
            let actions = self.scheduler.take_actions();
            if actions.is_empty() {
                return;
            }
            for action in actions {
                self.apply(action);
            }
        }
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Ingest(batch) => {
                let (ctx, tx) = (self.ctx.clone(), self.inbox_tx.clone());
                self.ingests.spawn_blocking(move || {
                    ingest_batch(&ctx, batch, || {
                        let _ = tx.send(Msg::Progress);
                    })
                });
            }
            Action::Start(task) => self.start(task),
            Action::QueueJoins(task) => {
                let mut ledger = self.ctx.ledger.lock();
                let max_depth = self.ctx.setup().cfg.max_depth;
                match crate::join::due(&*ledger, &task, max_depth) {
                    Ok(joins) if joins.is_empty() => {}
                    Ok(joins) => {
                        if let Err(e) = ledger.append(joins) {
                            tracing::error!(%task, "queuing a join: {e:#}");
                        }
                    }
                    Err(e) => tracing::error!(%task, "finding the joins due: {e:#}"),
                }
            }
            Action::Unindex(path) => self.ctx.index.send(IndexOp::Remove(path)),
            Action::CatchUpIndex => self.ctx.index.send(IndexOp::CatchUp),
            Action::Watch(stage) => {
                if let Err(e) = self.watcher.watch_stage(&stage) {
                    tracing::warn!("{e:#}");
                }
            }
            Action::ReadJournal => {
                self.flags.journal_seen();
                if let Err(e) = self.ctx.ledger.lock().refresh() {
                    tracing::warn!("reading the journal: {e:#}");
                }
            }
            Action::ReloadConfig => self.reload_config(),
            Action::StopRunners => {
                let _ = self.stop_tx.send(true);
            }
            Action::Cancel(task) => {
                if let Some(cancel) = self.cancels.get(&task) {
                    tracing::info!(%task, "cancelled by human: stopping its agent");
                    let _ = cancel.send(true);
                }
            }
        }
    }

    /// Reads an edited `baton.toml`: a valid one is applied to new work (what runs goes
    /// on by the config it started with) and journalled; an invalid one is reported
    /// with its place in the file, and the daemon keeps the config it runs.
    fn reload_config(&mut self) {
        let hash = super::config_hash(&self.ctx.ws);
        if hash == self.ctx.setup().hash {
            return;
        }
        let cfg = match Config::load(&self.ctx.ws).and_then(|c| c.check_runnable().map(|()| c)) {
            Ok(cfg) => cfg,
            Err(e) => {
                let first = e.to_string();
                let first = first.lines().next().unwrap_or_default().to_string();
                tracing::warn!("{first}; the daemon keeps running the config it had");
                return;
            }
        };
        let launcher = match Launcher::new(&cfg) {
            Ok(launcher) => launcher,
            Err(e) => {
                tracing::warn!(
                    "applying the edited baton.toml: {e:#}; the daemon keeps running the config it had"
                );
                return;
            }
        };
        for stage in &cfg.stages {
            let dir = self.ctx.ws.root.join(stage);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::warn!("creating the stage folder {}: {e}", dir.display());
            }
        }
        if let Err(e) = self.watcher.set_stages(&cfg.stages) {
            tracing::warn!("{e:#}");
        }
        self.ctx.index.send(IndexOp::Stages(cfg.stages.clone()));
        self.scheduler.reconfigure(&cfg);
        let agents: Vec<String> = cfg.agents.keys().cloned().collect();
        self.ctx.replace_setup(Setup {
            cfg,
            launcher,
            hash: hash.clone(),
        });
        let loaded = Record::ConfigLoaded { hash };
        if let Err(e) = self.ctx.ledger.append(vec![loaded], Durability::Buffered) {
            tracing::error!("journalling the config: {e:#}");
        }
        tracing::info!(agents = agents.join(", "), "applied the edited baton.toml");
        // Tasks of new agents, queued in the journal, are queued here now; and new
        // stages are walked.
        for (task, view) in self.open_tasks() {
            self.scheduler.consider(&task, Some(view));
        }
        self.scheduler.rescan_stages();
    }

    fn start(&mut self, id: TaskId) {
        let task = match self.ctx.ledger.lock().task(&id) {
            Ok(task) => task.map(std::borrow::Cow::into_owned),
            Err(e) => {
                tracing::error!(task = %id, "looking up a task: {e:#}");
                None
            }
        };
        let Some(task) = task else {
            tracing::error!(task = %id, "a task to start is not in the journal");
            self.scheduler.on_ended(&id, None, None);
            return;
        };
        let setup = self.ctx.setup();
        if !setup.cfg.agents.contains_key(&task.agent) {
            tracing::warn!(task = %id, agent = task.agent, "the task's agent is no longer in baton.toml; it stays queued");
            self.scheduler.on_ended(&id, None, None);
            return;
        }
        let job = Job {
            attempt: task.attempt + 1,
            task: task.clone(),
            setup: setup.clone(),
        };
        let tx = self.inbox_tx.clone();
        let (cancel_tx, cancel) = watch::channel(false);
        self.cancels.insert(id.clone(), cancel_tx);
        let exited = move || {
            let _ = tx.send(Msg::Exited(id));
        };
        let stops = runner::Stops {
            shutdown: self.stop_tx.subscribe(),
            cancel,
        };
        let runner = runner::run(self.ctx.clone(), job, stops, exited);
        let handle = self.runners.spawn(runner);
        let attempt = task.attempt + 1;
        self.running.insert(
            handle.id(),
            Running {
                task,
                attempt,
                setup,
                recovering: false,
            },
        );
    }

    fn on_runner_joined(
        &mut self,
        joined: Result<(tokio::task::Id, Ended), tokio::task::JoinError>,
    ) {
        let (id, ended) = match joined {
            Ok((id, ended)) => (id, ended),
            Err(e) => return self.on_runner_panicked(e),
        };
        self.running.remove(&id);
        self.cancels.remove(&ended.task);
        let view = self.ctx.view(&ended.task);
        match ended.no_space {
            Some(free) => self.scheduler.on_no_space(&ended.task, view, free),
            None => self.scheduler.on_ended(&ended.task, ended.status, view),
        }
    }

    /// A runner panicked: its attempt is recorded as failed, by a job that takes its
    /// place in the `JoinSet`.
    fn on_runner_panicked(&mut self, e: tokio::task::JoinError) {
        let Some(running) = self.running.remove(&e.id()) else {
            return;
        };
        let Running {
            task,
            attempt,
            setup,
            recovering,
        } = running;
        tracing::error!(task = %task.id, "the runner failed: {e}");
        self.cancels.remove(&task.id);
        if recovering {
            let view = self.ctx.view(&task.id);
            self.scheduler.on_ended(&task.id, None, view);
            return;
        }
        let ctx = self.ctx.clone();
        let error = format!("internal error: the runner failed: {e}");
        let recorded = task.clone();
        let recording = setup.clone();
        let handle = self.runners.spawn(async move {
            let id = recorded.id.clone();
            let status = tokio::task::spawn_blocking(move || {
                record_failure(&ctx, &recording, &recorded, attempt, None, error, 0)
            })
            .await;
            Ended {
                task: id,
                status: status.ok().and_then(Result::ok),
                no_space: None,
            }
        });
        self.running.insert(
            handle.id(),
            Running {
                task,
                attempt,
                setup,
                recovering: true,
            },
        );
    }
}

/// Writes what the ledger batched to the state store. Blocking.
/// A segment sealed meanwhile is compressed.
fn flush_ledger(ctx: &Ctx) {
    let sealed = {
        let mut ledger = ctx.ledger.lock();
        if let Err(e) = ledger.flush() {
            tracing::error!("writing the state store: {e:#}; reports catch up from the journal");
        }
        ledger.take_sealed()
    };
    if let (true, Some(compressor)) = (sealed, &ctx.compressor) {
        compressor.nudge();
    }
}
