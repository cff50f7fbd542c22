//! An attempt's end, journalled: a successful agent's outputs committed (or held, or
//! refused as a scope violation), a failure recorded with its retry, or its death once
//! the agent's retries are spent. The staging tree and logs of a failed attempt stay.

use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Result;

use super::context::{Ctx, Setup};
use super::runner::MIN_FREE;
use crate::commit;
use crate::journal::{Finish, Record, Status, TaskInfo};

/// How an attempt ended, once its agent's process group is gone.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The agent could not be started (its folder, its program).
    SpawnFailed(anyhow::Error),
    Exited(ExitStatus),
    /// Stopped at the agent's timeout, which it ran for.
    TimedOut(Duration),
    /// Waiting for the process failed.
    Lost(std::io::Error),
    /// The task's input was removed before the attempt: the task is dead, not retried.
    InputGone,
    /// Its deadline passed, before it started or while it ran (then it was stopped):
    /// dead, not retried.
    DeadlinePassed,
    /// Its chain's budget was spent before it started: dead, not retried.
    BudgetSpent,
}

/// How settling an attempt ended.
#[derive(Debug)]
pub(crate) enum Settled {
    /// Its end is journalled, with this status.
    Journalled(Status),
    /// It failed while the disk was full (baton's commit, or the agent with the disk
    /// of its attempt folder short of [`MIN_FREE`]): nothing is journalled, no retry is
    /// spent, and the task runs again once there is room. The disk had this many bytes
    /// free.
    DiskFull(u64),
}

/// Journals how attempt `attempt` of `task` ended, after `duration_ms`.
pub(crate) fn settle(
    ctx: &Ctx,
    setup: &Setup,
    task: &TaskInfo,
    attempt: u32,
    outcome: Outcome,
    duration_ms: u64,
) -> Result<Settled> {
    let full = |why: &str| {
        tracing::warn!(
            agent = task.agent,
            task = %task.id,
            attempt,
            "{why} while the disk is full: not counted as a failure; it runs again once there is room"
        );
        Ok(Settled::DiskFull(free_space(ctx)))
    };
    let (exit, error) = match outcome {
        Outcome::Exited(status) if status.success() => {
            let checked = super::checks::run(ctx, setup, task, attempt);
            match checked {
                Ok(None) => {}
                Ok(Some(reason)) => {
                    return record_failure(ctx, setup, task, attempt, Some(0), reason, duration_ms)
                        .map(Settled::Journalled);
                }
                Err(e) if crate::error::is_disk_full(&e) => {
                    return full(&format!("checking the outputs failed: {e:#}"));
                }
                Err(e) => return Err(e),
            }
            match setup.committer(ctx).commit(task, attempt, duration_ms) {
                Ok(commit::Outcome::Done) => return Ok(Settled::Journalled(Status::Done)),
                Ok(commit::Outcome::Held) => return Ok(Settled::Journalled(Status::Held)),
                Ok(commit::Outcome::Refused(violation)) => (
                    Some(0),
                    format!("scope violation: {violation}; nothing was committed"),
                ),
                Ok(commit::Outcome::Failed(reason)) => (Some(0), reason),
                Ok(commit::Outcome::DiskFull(reason)) => return full(&reason),
                Err(e) if crate::error::is_disk_full(&e) => {
                    return full(&format!("committing failed: {e:#}"));
                }
                Err(e) => return Err(e),
            }
        }
        Outcome::Exited(_) | Outcome::SpawnFailed(_) if free_space(ctx) < MIN_FREE => {
            return full("the agent failed");
        }
        Outcome::Exited(status)
            if status
                .code()
                .is_some_and(|c| setup.cfg.agents[&task.agent].fatal_exits.contains(&c)) =>
        {
            let error = format!(
                "{}, one of its `fatal_exits`: not retried",
                describe_exit(status)
            );
            tracing::warn!(agent = task.agent, task = %task.id, error, "dead");
            let dead = Finish::Dead {
                exit: status.code(),
                error,
            };
            return journal_end(ctx, setup, task, attempt, duration_ms, dead, Then::FallBack)
                .map(|()| Settled::Journalled(Status::Dead));
        }
        Outcome::Exited(status) => {
            let mut error = describe_exit(status);
            let agent = &setup.cfg.agents[&task.agent];
            if setup.launcher.mode(agent).confined() && denied_in_logs(ctx, task, attempt) {
                error.push_str(DENIED_HINT);
            }
            (status.code(), error)
        }
        Outcome::SpawnFailed(e) => (None, format!("could not start the agent: {e:#}")),
        Outcome::TimedOut(after) => (
            None,
            format!("timed out after {}", humantime::format_duration(after)),
        ),
        Outcome::Lost(e) => (None, format!("lost the agent process: {e}")),
        Outcome::DeadlinePassed => {
            let error = format!(
                "deadline passed ({})",
                task.deadline.as_deref().unwrap_or_default()
            );
            tracing::warn!(agent = task.agent, task = %task.id, error, "dead");
            return dead_at_once(ctx, setup, task, attempt, duration_ms, error);
        }
        Outcome::BudgetSpent => {
            let error =
                "budget spent: the tasks of its chain reported costs up to its budget".to_string();
            tracing::warn!(agent = task.agent, task = %task.id, error, "dead");
            return dead_at_once(ctx, setup, task, attempt, duration_ms, error);
        }
        Outcome::InputGone => {
            let error = format!("its input {} was removed", task.input);
            tracing::warn!(agent = task.agent, task = %task.id, error, "dropped");
            return dead_at_once(ctx, setup, task, attempt, duration_ms, error);
        }
    };
    record_failure(ctx, setup, task, attempt, exit, error, duration_ms).map(Settled::Journalled)
}

/// Journals the task dead with `error`, whatever retries it has left, for a bound of
/// its chain (its deadline, its budget) or its input gone: no fallback would do better.
fn dead_at_once(
    ctx: &Ctx,
    setup: &Setup,
    task: &TaskInfo,
    attempt: u32,
    duration_ms: u64,
    error: String,
) -> Result<Settled> {
    let dead = Finish::Dead { exit: None, error };
    journal_end(ctx, setup, task, attempt, duration_ms, dead, Then::Stop)?;
    Ok(Settled::Journalled(Status::Dead))
}

/// Whether a death hands the task's input on to its agent's `fallback` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    FallBack,
    Stop,
}

/// Journals how the attempt ended, with what its `result.toml` reported; a death that
/// falls back is journalled in the same append as what follows it (the fallback task,
/// or the escalation to a person), so no crash can keep one without the other.
fn journal_end(
    ctx: &Ctx,
    setup: &Setup,
    task: &TaskInfo,
    attempt: u32,
    duration_ms: u64,
    finish: Finish,
    then: Then,
) -> Result<()> {
    let reported = reported(ctx, task, attempt);
    let cost = reported
        .as_ref()
        .and_then(crate::budget::cost_in)
        .unwrap_or(0.0);
    let died_of = match &finish {
        Finish::Dead { error, .. } if then == Then::FallBack => Some(error.clone()),
        _ => None,
    };
    let mut records =
        vec![Record::finished(&task.id, attempt, duration_ms, finish).with_result(reported)];
    let mut ledger = ctx.ledger.lock();
    let next = match &died_of {
        None => Vec::new(),
        Some(_) => {
            crate::fallback::after_death(&setup.cfg, &*ledger, task, cost).unwrap_or_else(|e| {
                tracing::error!(task = %task.id, "finding its fallback: {e:#}");
                Vec::new()
            })
        }
    };
    let fallback = next.iter().find_map(|r| match r {
        Record::Queued { task, agent, .. } => Some((task.clone(), agent.clone())),
        _ => None,
    });
    let escalated = next.iter().any(|r| matches!(r, Record::Escalated { .. }));
    records.extend(next);
    ledger.append(records)?;
    drop(ledger);
    if let Some((next, agent)) = fallback {
        tracing::warn!(task = %task.id, fallback = %next, agent, "its input goes to its fallback");
        hand_feedback_on(ctx, task, &next, died_of.as_deref().unwrap_or_default());
    }
    if escalated {
        tracing::warn!(task = %task.id, "escalated: it waits for a person");
    }
    Ok(())
}

/// Writes the feedback file of `next`, the fallback of dead task `dead`: why it died,
/// then the failures of its attempts, so the fallback's agent starts where the other
/// stopped. A file that cannot be written costs the fallback its feedback, nothing else.
fn hand_feedback_on(ctx: &Ctx, dead: &TaskInfo, next: &crate::journal::TaskId, error: &str) {
    let earlier =
        std::fs::read_to_string(ctx.ws.feedback_file(dead.id.as_str())).unwrap_or_default();
    let text = format!(
        "## Task {} ({}) on this input is dead\n\n{error}\n\n{earlier}",
        dead.id, dead.agent
    );
    let file = ctx.ws.feedback_file(next.as_str());
    let written = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&file, text));
    if let Err(e) = written {
        tracing::warn!(task = %next, "writing {}: {e}", file.display());
    }
}

/// The free bytes on the disk of the attempt folders (`u64::MAX` if unknown).
pub(crate) fn free_space(ctx: &Ctx) -> u64 {
    fs4::available_space(ctx.ws.runs_dir()).unwrap_or(u64::MAX)
}

/// Records a failed attempt: `failed` with the backoff before the next one, or `dead`
/// once the agent's retries are spent.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_failure(
    ctx: &Ctx,
    setup: &Setup,
    task: &TaskInfo,
    attempt: u32,
    exit: Option<i32>,
    error: String,
    duration_ms: u64,
) -> Result<Status> {
    let agent = &setup.cfg.agents[&task.agent];
    let failures = task.failures + 1;
    let (status, finish) = if failures > agent.retries {
        let error = format!(
            "{error} (attempt {attempt}; {} retries spent)",
            agent.retries
        );
        tracing::warn!(agent = task.agent, task = %task.id, error, "dead");
        (Status::Dead, Finish::Dead { exit, error })
    } else {
        let retry_in = agent.backoff_for(failures);
        tracing::warn!(
            agent = task.agent,
            task = %task.id,
            attempt,
            error,
            retry_in_ms = retry_in.as_millis() as u64,
            "failed"
        );
        (
            Status::Failed,
            Finish::Failed {
                exit,
                error,
                retry_in,
            },
        )
    };
    if status == Status::Failed {
        note_feedback(ctx, task, attempt, &finish);
    }
    journal_end(
        ctx,
        setup,
        task,
        attempt,
        duration_ms,
        finish,
        Then::FallBack,
    )?;
    Ok(status)
}

/// What a failed attempt's `result.toml` reported, so its `cost` is charged too.
fn reported(ctx: &Ctx, task: &TaskInfo, attempt: u32) -> Option<serde_json::Value> {
    let file = ctx
        .ws
        .attempt_dir(task.id.as_str(), attempt)
        .join("out")
        .join(crate::commit::RESULT_FILE);
    file.is_file()
        .then(|| crate::commit::read_result(&file))
        .flatten()
}

/// Adds why attempt `attempt` failed to the task's feedback file, which the next
/// attempt reads as `BATON_FEEDBACK`, so an LLM agent can correct itself. A file that
/// cannot be written costs the next attempt its feedback, nothing else.
fn note_feedback(ctx: &Ctx, task: &TaskInfo, attempt: u32, finish: &Finish) {
    use std::io::Write as _;
    let Finish::Failed { error, .. } = finish else {
        return;
    };
    let file = ctx.ws.feedback_file(task.id.as_str());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| writeln!(f, "## Attempt {attempt} failed\n\n{error}\n"));
    if let Err(e) = written {
        tracing::warn!(task = %task.id, "writing {}: {e}", file.display());
    }
}

/// Said after a failed sandboxed attempt whose stderr reports a denied write.
const DENIED_HINT: &str = "; its stderr reports \"Permission denied\": it runs in \
    baton's sandbox, which lets it write only $BATON_OUT, $TMPDIR and its `sandbox_writes` \
    (add the folder it needs there, or set `sandbox = false` in baton.toml)";

/// Whether the end of the attempt's `stderr.log` reports a write the sandbox denied.
fn denied_in_logs(ctx: &Ctx, task: &TaskInfo, attempt: u32) -> bool {
    use std::io::{Read as _, Seek as _, SeekFrom};
    const TAIL: u64 = 64 << 10;
    let path = ctx
        .ws
        .attempt_dir(task.id.as_str(), attempt)
        .join("stderr.log");
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tail = Vec::new();
    let read = file
        .seek(SeekFrom::Start(len.saturating_sub(TAIL)))
        .and_then(|_| file.take(TAIL).read_to_end(&mut tail));
    read.is_ok() && String::from_utf8_lossy(&tail).contains("Permission denied")
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(75), _) => "exited with 75 (EX_TEMPFAIL: try again later)".to_string(),
        (Some(127), _) => {
            "exited with status 127 (a command was not found: stderr.log says which)".to_string()
        }
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => "ended abnormally".to_string(),
    }
}
