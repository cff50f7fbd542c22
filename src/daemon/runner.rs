//! Running one attempt of one task: the agent protocol (DESIGN §3).
//!
//! A runner owns its child process: it claims a fresh attempt folder, starts the agent
//! in its own process group, waits for it, its timeout or the daemon's shutdown, stops
//! whatever the agent left running, then settles the attempt on the blocking pool.

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use tokio::process::Child;
use tokio::sync::watch;

use super::attempt::{Attempt, TaskFile};
use super::capture::capture;
use super::context::Ctx;
use super::process;
use super::settle::{self, Outcome};
use crate::journal::{Durability, Record, Status, TaskId, TaskInfo};

/// One attempt to run.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) task: TaskInfo,
    /// The attempt's number: one more than the journal's last.
    pub(crate) attempt: u32,
}

/// How a runner ended, for the scheduler.
#[derive(Debug)]
pub(crate) struct Ended {
    pub(crate) task: TaskId,
    /// What was journalled; `None` when the daemon's shutdown interrupted the attempt
    /// (it runs again at the next start) or it could not be journalled.
    pub(crate) status: Option<Status>,
}

/// Runs `job`. `exited` is called once the agent's process group is gone, before the
/// attempt is settled: the scheduler may start the next agent meanwhile.
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    job: Job,
    mut stop: watch::Receiver<bool>,
    exited: impl FnOnce(),
) -> Ended {
    let started = Instant::now();
    let mut attempt = job.attempt;
    let outcome = match spawn(&ctx, &job).await {
        Err(e) => Some(Outcome::SpawnFailed(e)),
        Ok(mut spawned) => {
            attempt = spawned.number;
            let cap = ctx.cfg.agents[&job.task.agent].max_log_bytes;
            let stdout = spawned.child.stdout.take();
            let stderr = spawned.child.stderr.take();
            let [out_log, err_log] = spawned.logs;
            let captured = tokio::spawn(async move {
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
            let outcome = wait(&ctx, &job, spawned.child, spawned.pgid, &mut stop).await;
            // The group is gone, so the pipes are closed, unless a process that left
            // the group holds them: the logs are not waited for past a moment.
            let drained = tokio::time::timeout(LOGS_AFTER_EXIT, captured).await;
            if drained.is_err() {
                tracing::warn!(task = %job.task.id, "a process outside the agent's group still holds its output open; its logs end here");
            }
            outcome
        }
    };
    exited();
    // Let the scheduler start the next agent before this attempt is settled.
    tokio::task::yield_now().await;
    let status = match outcome {
        None => {
            tracing::info!(task = %job.task.id, "interrupted by shutdown; it runs again at the next start");
            None
        }
        Some(outcome) => {
            let ms = started.elapsed().as_millis() as u64;
            let (ctx, task) = (ctx.clone(), job.task.clone());
            let settled = tokio::task::spawn_blocking(move || {
                settle::settle(&ctx, &task, attempt, outcome, ms)
            })
            .await;
            match settled {
                Ok(Ok(status)) => Some(status),
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
    }
}

/// Waits for the agent, its timeout or the shutdown, then for its whole group to be
/// gone. `None`: interrupted by the daemon's shutdown, which is not the agent's doing.
async fn wait(
    ctx: &Ctx,
    job: &Job,
    mut child: Child,
    pgid: u32,
    stop: &mut watch::Receiver<bool>,
) -> Option<Outcome> {
    let timeout = ctx.cfg.agents[&job.task.agent].timeout;
    let exit = tokio::select! {
        status = child.wait() => Some(status),
        _ = tokio::time::sleep(timeout) => None,
        _ = stop.wait_for(|stopping| *stopping) => None,
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
    let stopping = *stop.borrow();
    match exit {
        None if stopping => None,
        None => Some(Outcome::TimedOut(timeout)),
        Some(Err(e)) => Some(Outcome::Lost(e)),
        // Killed along with the daemon's shutdown: not the agent's failure.
        Some(Ok(status)) if stopping && !status.success() => None,
        Some(Ok(status)) => Some(Outcome::Exited(status)),
    }
}

/// How long an attempt's logs are copied after its process group is gone.
const LOGS_AFTER_EXIT: Duration = Duration::from_secs(1);

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

/// Claims the attempt's folder, starts the agent and journals `task.started`, in one
/// trip to the blocking pool.
async fn spawn(ctx: &Arc<Ctx>, job: &Job) -> Result<Spawned> {
    let ctx = ctx.clone();
    let job = job.clone();
    tokio::task::spawn_blocking(move || {
        let task = &job.task;
        let attempt = Attempt::claim(&ctx.ws, &task.id, job.attempt)?;
        {
            let ledger = ctx.ledger.lock();
            attempt.write_task_file(&TaskFile::new(&ctx.ws, &ledger.state, task, &attempt))?;
        }
        let number = attempt.number;
        let agent = &ctx.cfg.agents[&task.agent];
        let before = crate::sys::boot_ticks();
        let out = attempt.out.clone();
        let child = match ctx
            .launcher
            .command(&ctx.ws, agent, task, &attempt)?
            .spawn()
        {
            Ok(child) => child,
            Err(e) => bail!("{}", ctx.launcher.explain(&ctx.ws, agent, task, &out, &e)),
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
            "started"
        );
        let started = Record::Started {
            task: task.id.clone(),
            attempt: number,
            pid,
            start_time,
        };
        ctx.ledger.append(vec![started], Durability::Buffered)?;
        Ok(Spawned {
            child,
            pgid: pid,
            number,
            logs: [attempt.stdout, attempt.stderr],
        })
    })
    .await?
}
