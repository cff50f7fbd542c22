//! Running one attempt of one task: the agent protocol (DESIGN §3).
//!
//! A runner owns its child process: it claims a fresh attempt folder, starts the agent
//! in its own process group, waits for it, its timeout or the daemon's shutdown, stops
//! whatever the agent left running, then settles the attempt on the blocking pool.

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use tokio::sync::watch;

use super::attempt::{Attempt, TaskFile};
use super::capture::capture;
use super::child::Child;
use super::context::{Ctx, Setup};
use super::process;
use super::settle::{self, Outcome, Settled};
use crate::journal::{Durability, Record, Status, TaskId, TaskInfo};

/// One attempt to run.
#[derive(Clone)]
pub(crate) struct Job {
    pub(crate) task: TaskInfo,
    /// The attempt's number: one more than the journal's last.
    pub(crate) attempt: u32,
    /// The config (and launcher) the attempt runs and is judged by, whatever edits
    /// `baton.toml` sees meanwhile.
    pub(crate) setup: Arc<Setup>,
}

/// How a runner ended, for the scheduler.
#[derive(Debug)]
pub(crate) struct Ended {
    pub(crate) task: TaskId,
    /// What was journalled; `None` when the daemon's shutdown interrupted the attempt
    /// (it runs again at the next start) or it could not be journalled.
    pub(crate) status: Option<Status>,
    /// Not started, with nothing made or journalled: the disk had only this many bytes
    /// free. Dispatch pauses (see `Scheduler::on_no_space`).
    pub(crate) no_space: Option<u64>,
}

/// What stops a runner's agent before it ends by itself (besides its timeout).
pub(crate) struct Stops {
    /// The daemon's shutdown: the attempt is interrupted, and runs again at the next
    /// start.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// `baton cancel`: the task is dead already; the agent is stopped.
    pub(crate) cancel: watch::Receiver<bool>,
}

/// How waiting for the agent ended.
enum Waited {
    /// It ended (or could not be waited for): journal this.
    Ended(Outcome),
    /// Stopped by the daemon's shutdown: not the agent's doing; nothing is journalled.
    Interrupted,
    /// Stopped because a person cancelled the task, which is journalled already.
    Cancelled,
}

/// Runs `job`. `exited` is called once the agent's process group is gone, before the
/// attempt is settled: the scheduler may start the next agent meanwhile.
pub(crate) async fn run(ctx: Arc<Ctx>, job: Job, mut stops: Stops, exited: impl FnOnce()) -> Ended {
    let started = Instant::now();
    let mut attempt = job.attempt;
    // An attempt whose leftovers are stopped when it is settled.
    let mut left_over = None;
    let waited = match spawn(&ctx, &job).await {
        Err(NotStarted::NoSpace(free)) => {
            exited();
            return Ended {
                task: job.task.id,
                status: None,
                no_space: Some(free),
            };
        }
        Err(NotStarted::InputGone) => {
            attempt = job.task.attempt; // no new attempt was made
            Waited::Ended(Outcome::InputGone)
        }
        Err(NotStarted::DeadlinePassed) => {
            attempt = job.task.attempt; // no new attempt was made
            Waited::Ended(Outcome::DeadlinePassed)
        }
        Err(NotStarted::BudgetSpent) => {
            attempt = job.task.attempt; // no new attempt was made
            Waited::Ended(Outcome::BudgetSpent)
        }
        Err(NotStarted::Failed(e)) => Waited::Ended(Outcome::SpawnFailed(e)),
        Ok(mut spawned) => {
            attempt = spawned.number;
            let cap = job.setup.cfg.agents[&job.task.agent].max_log_bytes;
            let stdout = spawned.child.stdout.take();
            let stderr = spawned.child.stderr.take();
            let [out_log, err_log] = spawned.logs;
            let mut captured = tokio::spawn(async move {
                let out = async {
                    if let Some(pipe) = stdout {
                        capture(pipe, out_log, cap, "stdout").await;
                    }
                };
                let err = async {
                    if let Some(pipe) = stderr {
                        capture(pipe, err_log, cap, "stderr").await;
                    }
                };
                tokio::join!(out, err);
            });
            let waited = wait(&job, spawned.child, spawned.pgid, &mut stops).await;
            // The group is gone, so the pipes close, unless a process that left the group
            // holds them.
            let whole = tokio::time::timeout(LOGS_CLOSING, &mut captured)
                .await
                .is_ok();
            if whole && matches!(waited, Waited::Ended(_)) {
                // The common case: the logs are whole, so what the agent left is stopped
                // on the way to settling it, in the same trip to the blocking pool.
                left_over = Some(spawned.number);
            } else {
                let (gone, task, number) = (ctx.clone(), job.task.id.clone(), spawned.number);
                let _ = tokio::task::spawn_blocking(move || clean_up(&gone, &task, number)).await;
                // Whatever held the pipes is stopped: the logs are not waited for past
                // a moment.
                if !whole
                    && tokio::time::timeout(LOGS_AFTER_EXIT, captured)
                        .await
                        .is_err()
                {
                    tracing::warn!(task = %job.task.id, "a process outside the agent's group still holds its output open; its logs end here");
                }
            }
            waited
        }
    };
    // Let the scheduler start the next agent before this attempt is settled; but on a
    // budget, the slot is freed only once its cost is charged, so the next task of the
    // agent is judged by what this one spent.
    if job.task.budget.is_none() {
        exited();
        tokio::task::yield_now().await;
    }
    let status = match waited {
        Waited::Interrupted => {
            tracing::info!(task = %job.task.id, "interrupted by shutdown; it runs again at the next start");
            None
        }
        Waited::Cancelled => Some(Status::Dead),
        Waited::Ended(outcome) => {
            let ms = started.elapsed().as_millis() as u64;
            let (settling, task, setup) = (ctx.clone(), job.task.clone(), job.setup.clone());
            let settled = tokio::task::spawn_blocking(move || {
                if let Some(number) = left_over {
                    clean_up(&settling, &task.id, number);
                }
                settle::settle(&settling, &setup, &task, attempt, outcome, ms)
            })
            .await;
            match settled {
                Ok(Ok(Settled::Journalled(status))) => Some(status),
                Ok(Ok(Settled::DiskFull(free))) => {
                    return Ended {
                        task: job.task.id,
                        status: None,
                        no_space: Some(free),
                    };
                }
                Ok(Err(e)) if crate::error::is_disk_full(&e) => {
                    tracing::error!(task = %job.task.id, "could not journal the attempt's end: {e:#}; it runs again once there is room");
                    return Ended {
                        task: job.task.id,
                        status: None,
                        no_space: Some(settle::free_space(&ctx)),
                    };
                }
                Ok(Err(e)) => {
                    tracing::error!(task = %job.task.id, "could not settle the attempt: {e:#}");
                    None
                }
                Err(e) => {
                    tracing::error!(task = %job.task.id, "settling panicked: {e}");
                    None
                }
            }
        }
    };
    Ended {
        task: job.task.id,
        status,
        no_space: None,
    }
}

/// Stops whatever attempt `number` of `task` left running outside its group, and
/// removes its private temp folder. Blocking.
fn clean_up(ctx: &Ctx, task: &TaskId, number: u32) {
    let killed = ctx.processes.ended(task.as_str(), number);
    if killed > 0 {
        tracing::info!(%task, killed, "stopped processes the agent left outside its group");
    }
    // Mostly empty: one rmdir, and the walk only if the agent left files.
    let tmp = ctx.ws.attempt_dir(task.as_str(), number).join("tmp");
    if std::fs::remove_dir(&tmp).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

/// Waits for the agent, its timeout, the shutdown or a cancel, then for its whole group
/// to be gone.
async fn wait(job: &Job, mut child: Child, pgid: u32, stops: &mut Stops) -> Waited {
    let timeout = job.setup.cfg.agents[&job.task.agent].timeout;
    // Stopped at its deadline like at its timeout, whichever comes first.
    let until_deadline = deadline_of(&job.task).map(crate::deadline::left);
    let limit = until_deadline.map_or(timeout, |d| d.min(timeout));
    let exit = tokio::select! {
        status = child.wait() => Some(status),
        _ = tokio::time::sleep(limit) => None,
        _ = stops.shutdown.wait_for(|stopping| *stopping) => None,
        _ = stops.cancel.wait_for(|cancelled| *cancelled) => None,
    };
    match &exit {
        None => {
            process::stop_group(pgid, || {
                let _ = child.try_wait();
            })
            .await;
            let _ = child.wait().await;
        }
        Some(Ok(_)) => process::kill_leftovers(pgid).await,
        Some(Err(_)) => {}
    }
    let stopping = *stops.shutdown.borrow();
    let cancelled = *stops.cancel.borrow();
    match exit {
        None if cancelled => Waited::Cancelled,
        None if stopping => Waited::Interrupted,
        None if until_deadline.is_some_and(|d| d < timeout) => {
            Waited::Ended(Outcome::DeadlinePassed)
        }
        None => Waited::Ended(Outcome::TimedOut(timeout)),
        Some(Err(e)) => Waited::Ended(Outcome::Lost(e)),
        // Killed along with the daemon's shutdown, or a cancel: not the agent's failure.
        Some(Ok(status)) if cancelled && !status.success() => Waited::Cancelled,
        Some(Ok(status)) if stopping && !status.success() => Waited::Interrupted,
        Some(Ok(status)) => Waited::Ended(Outcome::Exited(status)),
    }
}

/// When `task` must be over, if ever.
fn deadline_of(task: &TaskInfo) -> Option<std::time::SystemTime> {
    task.deadline.as_deref().and_then(crate::deadline::read)
}

/// How long an attempt's logs are copied after its process group is gone.
const LOGS_AFTER_EXIT: Duration = Duration::from_secs(1);
/// How long the pipes of an agent whose group is gone are given to close by themselves
/// before what left the group is looked for.
const LOGS_CLOSING: Duration = Duration::from_millis(20);

/// An agent just started.
struct Spawned {
    child: Child,
    /// Its process group (its pid).
    pgid: u32,
    /// The attempt's number.
    number: u32,
    /// `stdout.log` and `stderr.log`, for [`capture`].
    logs: [File; 2],
}

/// Why an attempt did not start.
enum NotStarted {
    /// The task's input is gone from the workspace: there is nothing to run it on.
    InputGone,
    /// Its deadline passed before it could start.
    DeadlinePassed,
    /// Its chain's budget is spent.
    BudgetSpent,
    /// The disk holding the workspace has less than [`MIN_FREE`] bytes free: no attempt
    /// folder is made, and nothing is journalled.
    NoSpace(u64),
    Failed(anyhow::Error),
}

pub(crate) use crate::commit::MIN_FREE;

/// Claims the attempt's folder, starts the agent and journals `task.started`, in one
/// trip to the blocking pool.
async fn spawn(ctx: &Arc<Ctx>, job: &Job) -> Result<Spawned, NotStarted> {
    let ctx = ctx.clone();
    let job = job.clone();
    let started = tokio::task::spawn_blocking(move || {
        if std::fs::symlink_metadata(ctx.ws.abs(&job.task.input)).is_err() {
            return Err(NotStarted::InputGone);
        }
        if deadline_of(&job.task).is_some_and(|at| at <= std::time::SystemTime::now()) {
            return Err(NotStarted::DeadlinePassed);
        }
        let left = crate::budget::left(&*ctx.ledger.lock(), &job.task);
        if left.as_ref().is_ok_and(|l| l.is_some_and(|l| l <= 0.0)) {
            return Err(NotStarted::BudgetSpent);
        }
        match fs4::available_space(ctx.ws.runs_dir()) {
            Ok(free) if free < MIN_FREE => return Err(NotStarted::NoSpace(free)),
            _ => {}
        }
        start(&ctx, &job).map_err(NotStarted::Failed)
    })
    .await;
    started.unwrap_or_else(|e| Err(NotStarted::Failed(e.into())))
}

fn start(ctx: &Ctx, job: &Job) -> Result<Spawned> {
    {
        let task = &job.task;
        let mut attempt = Attempt::claim(&ctx.ws, &task.id, job.attempt)?;
        let (doc, budget) = {
            let state = ctx.ledger.lock();
            let budget = crate::budget::left(&*state, task)?;
            let doc = TaskFile::new(&ctx.ws, &job.setup.cfg, &*state, task, &attempt)?;
            (doc.with_budget(budget), budget)
        };
        attempt.write_task_file(&doc)?;
        let number = attempt.number;
        let agent = &job.setup.cfg.agents[&task.agent];
        let launcher = &job.setup.launcher;
        let sandbox = launcher.mode(agent);
        let mut command = launcher.command(&ctx.ws, agent, task, &attempt)?;
        command.env(
            "BATON_BUDGET",
            budget.map(|b| b.to_string()).unwrap_or_default(),
        );
        attempt.say_sandbox(sandbox, agent)?;
        let before = crate::sys::boot_ticks();
        let out = attempt.out.clone();
        let spawned = ctx
            .processes
            .spawn(task.id.as_str(), number, || command.spawn(), Child::id);
        let child = match spawned {
            Ok(child) => child,
            Err(e) => bail!(
                "{}",
                job.setup.launcher.explain(&ctx.ws, agent, task, &out, &e)
            ),
        };
        let pid = child
            .id()
            .context("the agent exited before it could be tracked")?;
        // Its start time, for a restarted daemon to recognise it: when the clock did not
        // tick while it was started, known without a read of /proc.
        let start_time = match crate::sys::boot_ticks() {
            after if after == before => after,
            _ => crate::sys::start_time(pid).unwrap_or(0),
        };
        tracing::info!(
            agent = task.agent,
            task = %task.id,
            input = %task.input,
            attempt = number,
            pid,
            sandbox = sandbox.as_str(),
            "started"
        );
        let started = Record::Started {
            task: task.id.clone(),
            attempt: number,
            pid,
            start_time,
            sandbox,
        };
        ctx.ledger.append(vec![started], Durability::Buffered)?;
        Ok(Spawned {
            child,
            pgid: pid,
            number,
            logs: [attempt.stdout, attempt.stderr],
        })
    }
}
