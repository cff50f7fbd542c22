//! The scheduler: every decision of the daemon, and no effects.
//!
//! It turns file hints into ingests (after the settle time where a file was written in
//! place), keeps per-agent queues within each agent's concurrency, times retries, and
//! stops in order. Each handler only changes the scheduler's own state and pushes
//! [`Action`]s; the [`super::supervisor`] applies them (starts runners, spawns ingest
//! workers, appends joins, feeds the index). So the decisions are unit-tested with a
//! paused clock, without a file system or a process.
//!
//! It learns about tasks from the ledger's dirty list, whatever queued them (a scan, a
//! commit, `baton retry` in another process): the supervisor hands each changed task to
//! [`Scheduler::consider`] with its journal state.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::deadlines::Deadlines;
use super::ingest::IngestJob;
use super::queues::AgentQueues;
use super::watcher::Hint;
use crate::config::Config;
use crate::journal::{Status, TaskId, TaskStatus};
use crate::workspace::RelPath;

/// Ingest workers at once on the blocking pool, so a burst of files cannot flood it.
const INGEST_WORKERS: usize = 2;
/// Jobs one ingest worker takes.
const INGEST_BATCH: usize = 64;
/// A folder that appears is scanned at once and again after this (or the settle time,
/// if longer): notify adds the new folder's watch only after delivering its event, so
/// files made in it meanwhile have no events of their own.
const FOLDER_AGAIN: Duration = Duration::from_millis(50);
/// An edited `baton.toml` is read once it has been quiet this long, at the least (an
/// editor's save can be several writes).
const CONFIG_QUIET: Duration = Duration::from_millis(100);
/// A file found open for writing is looked at again after this, at the least.
const BUSY_AGAIN: Duration = Duration::from_millis(20);

/// What the scheduler decided; the supervisor does it.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// Ingest these on an ingest worker.
    Ingest(Vec<IngestJob>),
    /// Start the next attempt of this task (its agent's slot is taken already).
    Start(TaskId),
    /// This task is final: journal the joins that are due now.
    QueueJoins(TaskId),
    /// This path (and everything under it, if it was a folder) is gone: out of the
    /// index.
    Unindex(RelPath),
    /// Events were lost: compare the whole index with the stages.
    CatchUpIndex,
    /// A stage folder appeared at the root, or a folder in a stage: watch it (again).
    Watch(String),
    /// Another process appended to the journal: read it.
    ReadJournal,
    /// `baton.toml` was edited and is quiet now: read it, and apply it if it is valid.
    ReloadConfig,
    /// Shutdown: every runner stops its agent.
    StopRunners,
    /// A person cancelled this running task: its runner stops its agent.
    Cancel(TaskId),
}

/// A task as the journal has it, for [`Scheduler::consider`].
#[derive(Debug, Clone)]
pub(crate) struct TaskView {
    pub(crate) agent: String,
    pub(crate) status: TaskStatus,
    /// For a failed task: how long until its next attempt is due.
    pub(crate) retry_in: Duration,
    /// A person cancelled it.
    pub(crate) cancelled: bool,
}

/// How the attempts of a run ended, for `baton run --once`'s closing line.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) done: usize,
    pub(crate) dead: usize,
    pub(crate) held: usize,
    pub(crate) failed_attempts: usize,
    /// Times dispatch paused because the disk was nearly full.
    pub(crate) no_space_pauses: usize,
    /// A shutdown signal came before the work was drained.
    pub(crate) interrupted: bool,
    /// `run --once` stopped with work left: the disk stayed full through the longest
    /// pause.
    pub(crate) disk_full: bool,
    /// Why the daemon stopped by itself, if it had to (its journal was deleted).
    #[serde(skip)]
    pub(crate) fatal: Option<String>,
}

/// When the daemon stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// At shutdown (SIGINT, SIGTERM): `baton run`.
    Shutdown,
    /// Once nothing is pending, or at shutdown: `baton run --once`.
    Idle,
}

/// What a settle timer is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Due {
    /// A file written in place, or found busy: look again.
    Path(RelPath),
    /// A folder that appeared: scan it once more, after its watch surely exists.
    Folder(RelPath),
    /// `baton.toml` was written: read it once the writing is over.
    Config,
}

pub(crate) struct Scheduler {
    /// How long a file written in place must stay quiet to be ready.
    settle: Duration,
    /// Whether an idle daemon is finished (`baton run --once`).
    until: Until,
    /// Files and folders to look at again later.
    settling: Deadlines<Due>,
    /// Failed tasks, until their next attempt is due.
    retries: Deadlines<TaskId>,
    /// Ingest jobs not handed to a worker yet, in order…
    ingest_queue: VecDeque<IngestJob>,
    /// …and the same jobs as a set, so a job is queued once.
    ingest_queued: HashSet<IngestJob>,
    /// Ingest workers running.
    ingest_workers: usize,
    /// The tasks held: waiting for a retry, queued, running.
    queues: AgentQueues,
    /// Shutdown began: no more ingests or starts; runners are stopping.
    stopping: bool,
    /// The tasks open at start have been considered. Before that, a task the journal
    /// says is running was left by an earlier daemon and runs again.
    started: bool,
    /// How the attempts of this run ended, so far.
    summary: Summary,
    /// Decided, not yet taken by the supervisor.
    actions: Vec<Action>,
    /// No attempt starts before this: the disk was full (see [`Scheduler::on_no_space`]).
    paused_until: Option<Instant>,
    /// The next pause, doubled each time the disk is found full again.
    pause: Duration,
}

/// The first pause of dispatch on a full disk, and the longest.
const PAUSE_FIRST: Duration = Duration::from_secs(1);
const PAUSE_MOST: Duration = Duration::from_secs(30);

impl Scheduler {
    pub(crate) fn new(cfg: &Config, until: Until) -> Scheduler {
        let limits = cfg
            .agents
            .values()
            .map(|a| (a.name.as_str(), a.concurrency));
        Scheduler {
            settle: cfg.settle,
            until,
            settling: Deadlines::new(),
            retries: Deadlines::new(),
            ingest_queue: VecDeque::new(),
            ingest_queued: HashSet::new(),
            ingest_workers: 0,
            queues: {
                let mut queues = AgentQueues::new(limits);
                queues.set_rates(cfg.agents.values().map(|a| (a.name.as_str(), a.rate)));
                queues
            },
            stopping: false,
            started: false,
            summary: Summary::default(),
            actions: Vec::new(),
            paused_until: None,
            pause: PAUSE_FIRST,
        }
    }

    /// Takes the tasks the journal leaves open at start, then scans every stage.
    pub(crate) fn begin(&mut self, open: Vec<(TaskId, TaskView)>) {
        for (id, view) in open {
            self.consider(&id, Some(view));
        }
        self.started = true;
        self.enqueue_ingest(IngestJob::Walk(None));
    }

    /// What was decided since the last call, in order.
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Hands out work while slots and workers are free: ingest batches, and the next
    /// queued tasks of agents under their concurrency.
    pub(crate) fn step(&mut self) {
        if self.stopping {
            return;
        }
        while self.ingest_workers < INGEST_WORKERS && !self.ingest_queue.is_empty() {
            let n = self.ingest_queue.len().min(INGEST_BATCH);
            let batch: Vec<IngestJob> = self.ingest_queue.drain(..n).collect();
            for job in &batch {
                self.ingest_queued.remove(job);
            }
            self.ingest_workers += 1;
            self.actions.push(Action::Ingest(batch));
        }
        if self.paused_until.is_some() {
            return; // the disk was full: nothing starts until the pause is over
        }
        while let Some(task) = self.queues.start_next() {
            tracing::debug!(%task, "dispatching");
            self.actions.push(Action::Start(task));
        }
    }

    /// Whether the daemon is done: stopped with nothing running, or, with [`Until::Idle`],
    /// nothing queued, running, settling, being ingested or waiting for a retry.
    pub(crate) fn finished(&self) -> bool {
        let drained = self.queues.running() == 0 && self.ingest_workers == 0;
        if self.stopping {
            return drained;
        }
        self.until == Until::Idle
            && drained
            && self.ingest_queue.is_empty()
            && self.settling.is_empty()
            && self.retries.is_empty()
            && self.queues.is_empty()
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping
    }

    /// When the next timer is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [
            self.settling.next(),
            self.retries.next(),
            self.paused_until,
            self.queues.rate_free_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn summary(&self) -> Summary {
        self.summary.clone()
    }

    /// Takes an edited config: the settle time and the agents' limits. Tasks of agents
    /// no longer in it are let go (they stay queued in the journal); the supervisor then
    /// considers every open task again, so tasks of new agents are queued.
    pub(crate) fn reconfigure(&mut self, cfg: &Config) {
        self.settle = cfg.settle;
        let limits = cfg
            .agents
            .values()
            .map(|a| (a.name.as_str(), a.concurrency));
        for task in self.queues.configure(limits) {
            self.retries.remove(&task);
            tracing::warn!(%task, "the task's agent is no longer in baton.toml; it stays queued");
        }
        self.queues
            .set_rates(cfg.agents.values().map(|a| (a.name.as_str(), a.rate)));
    }

    pub(crate) fn begin_stop(&mut self) {
        tracing::info!(
            running = self.queues.running(),
            "stopping: running agents get SIGTERM; their tasks run again at the next start"
        );
        self.stopping = true;
        self.summary.interrupted = true;
        self.actions.push(Action::StopRunners);
    }

    pub(crate) fn on_hint(&mut self, hint: Hint) {
        let now = Instant::now();
        match hint {
            Hint::Renamed(path) => {
                tracing::debug!(%path, "hint: renamed in");
                self.settling.remove(&Due::Path(path.clone()));
                self.enqueue_ingest(IngestJob::Path(path));
            }
            Hint::Closed(path) => self.settling.set(Due::Path(path), now + self.settle),
            Hint::Written(path) => {
                let due = Due::Path(path);
                if self.settling.contains(&due) {
                    self.settling.set(due, now + self.settle);
                }
            }
            Hint::Removed(path) => {
                self.settling.remove(&Due::Path(path.clone()));
                self.actions.push(Action::Unindex(path));
            }
            Hint::Folder(dir) => {
                // Watched first, then walked: a file renamed in meanwhile is seen by
                // one or the other.
                self.actions.push(Action::Watch(dir.to_string()));
                self.enqueue_ingest(IngestJob::Walk(Some(dir.clone())));
                let again = now + self.settle.max(FOLDER_AGAIN);
                self.settling.set(Due::Folder(dir), again);
            }
            Hint::Stage(stage) => {
                if let Ok(dir) = RelPath::new(&stage) {
                    self.enqueue_ingest(IngestJob::Walk(Some(dir)));
                }
                self.actions.push(Action::Watch(stage));
            }
            Hint::Rescan => self.rescan(),
            Hint::Journal => self.actions.push(Action::ReadJournal),
            Hint::Config => self
                .settling
                .set(Due::Config, now + self.settle.max(CONFIG_QUIET)),
        }
    }

    /// The periodic reconcile found these folders changed: walk them, in case the
    /// watcher missed what changed there.
    pub(crate) fn on_changed_folders(&mut self, dirs: Vec<RelPath>) {
        if self.stopping {
            return;
        }
        for dir in dirs {
            self.enqueue_ingest(IngestJob::Walk(Some(dir)));
        }
    }

    /// File events were lost (the channel or the kernel's queue overflowed).
    pub(crate) fn on_lost_events(&mut self) {
        tracing::warn!("file events were lost (queue overflow); rescanning the stages");
        self.rescan();
    }

    /// Walks every stage (after an edited config, which may name new ones).
    pub(crate) fn rescan_stages(&mut self) {
        self.enqueue_ingest(IngestJob::Walk(None));
    }

    fn rescan(&mut self) {
        self.enqueue_ingest(IngestJob::Walk(None));
        self.actions.push(Action::CatchUpIndex);
    }

    pub(crate) fn on_timers(&mut self) {
        let now = Instant::now();
        if self.paused_until.is_some_and(|until| until <= now) {
            self.paused_until = None;
        }
        for due in self.settling.pop_due(now) {
            match due {
                Due::Path(path) => self.enqueue_ingest(IngestJob::Path(path)),
                Due::Folder(dir) => self.enqueue_ingest(IngestJob::Walk(Some(dir))),
                Due::Config => self.actions.push(Action::ReloadConfig),
            }
        }
        for task in self.retries.pop_due(now) {
            let _ = self.queues.push(&task, None);
        }
    }

    /// An ingest worker finished; `busy` are the paths a writer still held open.
    pub(crate) fn on_ingested(&mut self, busy: Vec<RelPath>) {
        self.ingest_workers = self.ingest_workers.saturating_sub(1);
        let again = Instant::now() + self.settle.max(BUSY_AGAIN);
        for path in busy {
            self.settling.set(Due::Path(path), again);
        }
    }

    /// A runner's agent process group is gone: its slot is free while it settles.
    pub(crate) fn on_exited(&mut self, task: &TaskId) {
        self.queues.exited(task);
    }

    /// A runner ended for want of space, the disk having `free` bytes: the task was not
    /// started (nothing made or journalled), or its attempt failed while the disk was
    /// full (its end not journalled). It waits in its queue, and no attempt starts for
    /// a pause that doubles each time the disk is still full (up to 30 s), so a full
    /// disk costs a check per pause, not a loop of failed attempts, and no retry is
    /// spent.
    pub(crate) fn on_no_space(&mut self, task: &TaskId, view: Option<TaskView>, free: u64) {
        self.queues.ended(task);
        self.summary.no_space_pauses += 1;
        tracing::warn!(
            free_mib = free >> 20,
            "the workspace's disk is nearly full: dispatch pauses for {}s (needs {} MiB free)",
            self.pause.as_secs(),
            super::runner::MIN_FREE >> 20
        );
        if self.until == Until::Idle && self.pause >= PAUSE_MOST && !self.stopping {
            // A batch run does not wait for a person to free the disk.
            tracing::error!(
                "the disk stayed full through the longest pause: stopping with work left; \
                 it runs at the next start once there is room"
            );
            self.summary.disk_full = true;
            self.stopping = true;
            self.actions.push(Action::StopRunners);
        }
        self.paused_until = Some(Instant::now() + self.pause);
        self.pause = (self.pause * 2).min(PAUSE_MOST);
        if self.stopping {
            return;
        }
        match view {
            // An attempt whose end was not journalled: it runs again, as after a crash.
            Some(view) if matches!(view.status, TaskStatus::Running | TaskStatus::Committing) => {
                self.queue(task, &view.agent)
            }
            view => self.consider(task, view),
        }
    }

    /// A runner ended: its attempt was journalled with `status`, or (`None`) it was
    /// interrupted by shutdown or could not be journalled. `view` is the task as the
    /// journal has it now.
    pub(crate) fn on_ended(
        &mut self,
        task: &TaskId,
        status: Option<Status>,
        view: Option<TaskView>,
    ) {
        self.queues.ended(task);
        if status.is_some() {
            self.pause = PAUSE_FIRST; // an attempt ran: the disk had room
        }
        match status {
            Some(Status::Done) => self.summary.done += 1,
            Some(Status::Dead) => self.summary.dead += 1,
            Some(Status::Held) => self.summary.held += 1,
            Some(Status::Failed) => self.summary.failed_attempts += 1,
            None => {}
        }
        if !self.stopping {
            self.consider(task, view);
        }
    }

    /// Brings one task's place in line with its journal state (`None`: the journal
    /// does not know it).
    pub(crate) fn consider(&mut self, task: &TaskId, view: Option<TaskView>) {
        let Some(view) = view else { return };
        if self.queues.is_running(task) {
            if view.cancelled {
                self.actions.push(Action::Cancel(task.clone()));
            }
            return; // its runner reports when it ends
        }
        match view.status {
            TaskStatus::Queued => {
                self.retries.remove(task);
                self.queue(task, &view.agent);
            }
            // Without a runner of ours: left by an earlier daemon, at start (recovery
            // stopped its process group), so it runs again. Later, only another process
            // commits (`baton approve`): leave it to that.
            TaskStatus::Running | TaskStatus::Committing => {
                if !self.started {
                    self.queue(task, &view.agent);
                }
            }
            TaskStatus::Failed => {
                if self.queues.wait(task, &view.agent).is_ok() {
                    self.retries
                        .set(task.clone(), Instant::now() + view.retry_in);
                } else {
                    warn_unknown(task, &view.agent);
                }
            }
            TaskStatus::Held | TaskStatus::Escalated => {
                self.retries.remove(task);
                self.queues.forget(task);
            }
            TaskStatus::Done | TaskStatus::Dead => {
                self.retries.remove(task);
                self.queues.forget(task);
                self.actions.push(Action::QueueJoins(task.clone()));
            }
        }
    }

    fn queue(&mut self, task: &TaskId, agent: &str) {
        if self.queues.push(task, Some(agent)).is_err() {
            warn_unknown(task, agent);
        }
    }

    fn enqueue_ingest(&mut self, job: IngestJob) {
        if self.ingest_queued.insert(job.clone()) {
            self.ingest_queue.push_back(job);
        }
    }
}

fn warn_unknown(task: &TaskId, agent: &str) {
    tracing::warn!(
        %task,
        agent,
        "the task's agent is no longer in baton.toml; it stays queued"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tokio::time::advance;

    fn cfg(concurrency: u32, settle_ms: u64) -> Config {
        Config::parse(
            &format!(
                "[workspace]\nsettle_ms = {settle_ms}\n\
                 [agents.writer]\non = [\"briefs/*.md\"]\nrun = \"true\"\nconcurrency = {concurrency}\n"
            ),
            Path::new("/"),
        )
        .unwrap()
    }

    fn t(id: &str) -> TaskId {
        TaskId::from(id)
    }

    fn view(status: TaskStatus) -> Option<TaskView> {
        Some(TaskView {
            agent: "writer".into(),
            status,
            retry_in: Duration::ZERO,
            cancelled: false,
        })
    }

    fn starts(s: &mut Scheduler) -> Vec<String> {
        s.step();
        s.take_actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Start(task) => Some(task.to_string()),
                _ => None,
            })
            .collect()
    }

    /// A scheduler past its start, with its first stage scan handed out and done.
    fn started(cfg: &Config, until: Until) -> Scheduler {
        let mut s = Scheduler::new(cfg, until);
        s.begin(Vec::new());
        s.step();
        assert!(matches!(&s.take_actions()[..], [Action::Ingest(_)]));
        s.on_ingested(Vec::new());
        s
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_task_starts_again_when_its_backoff_is_over() {
        let mut s = started(&cfg(1, 20), Until::Idle);
        let retry = TaskView {
            retry_in: Duration::from_secs(2),
            ..view(TaskStatus::Failed).unwrap()
        };
        s.consider(&t("t-1"), Some(retry));
        assert!(starts(&mut s).is_empty());
        assert!(!s.finished(), "a retry is pending");
        assert_eq!(
            s.next_deadline(),
            Some(Instant::now() + Duration::from_secs(2))
        );
        advance(Duration::from_millis(1999)).await;
        s.on_timers();
        assert!(starts(&mut s).is_empty(), "not before the backoff");
        advance(Duration::from_millis(1)).await;
        s.on_timers();
        assert_eq!(starts(&mut s), ["t-1"]);
        // `baton retry` meanwhile requeues it: it is not started twice.
        s.consider(&t("t-1"), view(TaskStatus::Queued));
        assert!(starts(&mut s).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_slots_free_when_the_process_is_gone_not_when_it_settles() {
        let mut s = started(&cfg(2, 20), Until::Shutdown);
        for id in ["a", "b", "c", "d"] {
            s.consider(&t(id), view(TaskStatus::Queued));
        }
        assert_eq!(starts(&mut s), ["a", "b"]);
        s.on_exited(&t("a"));
        assert_eq!(starts(&mut s), ["c"], "a's slot is free while it commits");
        s.on_ended(&t("a"), Some(Status::Done), view(TaskStatus::Done));
        assert!(starts(&mut s).is_empty(), "b and c still run");
        s.on_ended(&t("b"), Some(Status::Done), view(TaskStatus::Done));
        assert_eq!(starts(&mut s), ["d"]);
        assert_eq!(s.summary().done, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_the_runners_and_waits_for_each_to_end() {
        let mut s = started(&cfg(2, 20), Until::Shutdown);
        s.consider(&t("a"), view(TaskStatus::Queued));
        s.consider(&t("b"), view(TaskStatus::Queued));
        s.consider(&t("c"), view(TaskStatus::Queued));
        assert_eq!(starts(&mut s), ["a", "b"]);
        s.begin_stop();
        assert_eq!(s.take_actions(), [Action::StopRunners]);
        s.on_exited(&t("a"));
        assert!(starts(&mut s).is_empty(), "nothing starts while stopping");
        s.on_ended(&t("a"), None, view(TaskStatus::Running));
        assert!(!s.finished(), "b still runs");
        s.on_ended(&t("b"), None, view(TaskStatus::Running));
        assert!(s.finished());
        let summary = s.summary();
        assert!(summary.interrupted);
        assert_eq!(
            (summary.done, summary.dead, summary.failed_attempts),
            (0, 0, 0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_cannot_start_frees_its_slot_and_is_retried_like_a_failure() {
        let mut s = started(&cfg(1, 20), Until::Idle);
        s.consider(&t("a"), view(TaskStatus::Queued));
        s.consider(&t("b"), view(TaskStatus::Queued));
        assert_eq!(starts(&mut s), ["a"]);
        // Its runner could not start the agent: the attempt is journalled as failed.
        let failed = TaskView {
            retry_in: Duration::from_millis(100),
            ..view(TaskStatus::Failed).unwrap()
        };
        s.on_ended(&t("a"), Some(Status::Failed), Some(failed));
        assert_eq!(starts(&mut s), ["b"], "the slot went to the next task");
        s.on_ended(&t("b"), Some(Status::Done), view(TaskStatus::Done));
        advance(Duration::from_millis(100)).await;
        s.on_timers();
        assert_eq!(starts(&mut s), ["a"]);
        s.on_ended(&t("a"), Some(Status::Dead), view(TaskStatus::Dead));
        assert_eq!(s.summary().failed_attempts, 1);
        assert!(s.finished(), "once: nothing left");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_disk_pauses_dispatch_with_a_doubling_pause_and_spends_no_retry() {
        let mut s = started(&cfg(2, 20), Until::Idle);
        s.consider(&t("a"), view(TaskStatus::Queued));
        s.consider(&t("b"), view(TaskStatus::Queued));
        assert_eq!(starts(&mut s), ["a", "b"]);
        s.on_no_space(&t("a"), view(TaskStatus::Queued), 1 << 20);
        assert!(starts(&mut s).is_empty(), "nothing starts during the pause");
        assert_eq!(s.next_deadline(), Some(Instant::now() + PAUSE_FIRST));
        assert!(!s.finished(), "a still waits");
        advance(PAUSE_FIRST).await;
        s.on_timers();
        assert_eq!(starts(&mut s), ["a"], "tried again after the pause");
        // Still full: the next pause is twice as long.
        s.on_no_space(&t("a"), view(TaskStatus::Queued), 1 << 20);
        advance(PAUSE_FIRST).await;
        s.on_timers();
        assert!(starts(&mut s).is_empty(), "the second pause is longer");
        advance(PAUSE_FIRST).await;
        s.on_timers();
        assert_eq!(starts(&mut s), ["a"]);
        s.on_ended(&t("a"), Some(Status::Done), view(TaskStatus::Done));
        s.on_ended(&t("b"), Some(Status::Done), view(TaskStatus::Done));
        let summary = s.summary();
        assert_eq!(
            (
                summary.done,
                summary.failed_attempts,
                summary.no_space_pauses
            ),
            (2, 0, 2)
        );
        assert_eq!(s.pause, PAUSE_FIRST, "room again: the pause starts over");
        assert!(s.finished());
    }

    #[tokio::test(start_paused = true)]
    async fn run_once_gives_up_on_a_disk_full_through_the_longest_pause_and_run_does_not() {
        for until in [Until::Idle, Until::Shutdown] {
            let mut s = started(&cfg(1, 20), until);
            s.consider(&t("a"), view(TaskStatus::Queued));
            let mut full_for = Duration::ZERO;
            for _ in 0..8 {
                assert_eq!(starts(&mut s), ["a"]);
                s.on_no_space(&t("a"), view(TaskStatus::Queued), 1 << 20);
                if s.stopping() {
                    break;
                }
                let pause = s.next_deadline().unwrap() - Instant::now();
                full_for += pause;
                advance(pause).await;
                s.on_timers();
            }
            match until {
                Until::Idle => {
                    assert!(s.summary().disk_full && s.finished(), "gave up");
                    assert_eq!(full_for, Duration::from_secs(1 + 2 + 4 + 8 + 16));
                }
                Until::Shutdown => {
                    assert!(!s.summary().disk_full && !s.finished(), "waits for room");
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_failed_on_a_full_disk_runs_again_after_the_pause() {
        let mut s = started(&cfg(1, 20), Until::Idle);
        s.consider(&t("a"), view(TaskStatus::Queued));
        assert_eq!(starts(&mut s), ["a"]);
        // Its end was not journalled: the journal still says it runs.
        s.on_no_space(&t("a"), view(TaskStatus::Running), 1 << 20);
        assert!(starts(&mut s).is_empty(), "nothing starts during the pause");
        assert!(!s.finished(), "a waits to run again");
        advance(PAUSE_FIRST).await;
        s.on_timers();
        assert_eq!(starts(&mut s), ["a"], "run again, not left running");
        s.on_ended(&t("a"), Some(Status::Done), view(TaskStatus::Done));
        assert_eq!(s.summary().failed_attempts, 0, "no retry spent");
        assert!(s.finished());
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_written_in_place_is_ingested_once_quiet_for_the_settle_time() {
        let mut s = started(&cfg(1, 100), Until::Idle);
        let p = RelPath::new("briefs/a.md").unwrap();
        s.on_hint(Hint::Closed(p.clone()));
        advance(Duration::from_millis(60)).await;
        s.on_hint(Hint::Written(p.clone())); // written again: the quiet time starts over
        advance(Duration::from_millis(60)).await;
        s.on_timers();
        s.step();
        assert!(s.take_actions().is_empty(), "not quiet for 100 ms yet");
        advance(Duration::from_millis(40)).await;
        s.on_timers();
        s.step();
        assert_eq!(
            s.take_actions(),
            [Action::Ingest(vec![IngestJob::Path(p.clone())])]
        );
        // Found open for writing: looked at again later, and meanwhile not finished.
        s.on_ingested(vec![p.clone()]);
        assert!(!s.finished());
        advance(Duration::from_millis(100)).await;
        s.on_timers();
        s.step();
        assert_eq!(s.take_actions(), [Action::Ingest(vec![IngestJob::Path(p)])]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_task_asks_for_its_joins_and_a_held_one_leaves_the_queue() {
        let mut s = started(&cfg(1, 20), Until::Idle);
        s.consider(&t("a"), view(TaskStatus::Queued));
        s.consider(&t("a"), view(TaskStatus::Held)); // approved elsewhere, held, …
        assert!(starts(&mut s).is_empty());
        s.consider(&t("a"), view(TaskStatus::Done));
        assert_eq!(s.take_actions(), [Action::QueueJoins(t("a"))]);
        // A task running when the daemon started was left by a crashed one: it runs
        // again. After the start, one running elsewhere is left alone.
        let mut fresh = Scheduler::new(&cfg(1, 20), Until::Idle);
        fresh.begin(vec![(t("x"), view(TaskStatus::Running).unwrap())]);
        fresh.consider(&t("y"), view(TaskStatus::Committing));
        assert_eq!(starts(&mut fresh), ["x"]);
    }
}
