//! An attempt's end, journalled: a successful agent's outputs committed (or held, or
//! refused as a scope violation), a failure recorded with its retry, or its death once
//! the agent's retries are spent. The staging tree and logs of a failed attempt stay.

use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Result;

use super::context::{Ctx, Setup};
use super::runner::MIN_FREE;
use crate::commit;
use crate::journal::{Durability, Finish, Record, Status, TaskInfo};

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
            return dead_at_once(ctx, task, attempt, duration_ms, status.code(), error);
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
            return dead_at_once(ctx, task, attempt, duration_ms, None, error);
        }
        Outcome::BudgetSpent => {
            let error =
                "budget spent: the tasks of its chain reported costs up to its budget".to_string();
            tracing::warn!(agent = task.agent, task = %task.id, error, "dead");
            return dead_at_once(ctx, task, attempt, duration_ms, None, error);
        }
        Outcome::InputGone => {
            let error = format!("its input {} was removed", task.input);
            tracing::warn!(agent = task.agent, task = %task.id, error, "dropped");
            return dead_at_once(ctx, task, attempt, duration_ms, None, error);
        }
    };
    record_failure(ctx, setup, task, attempt, exit, error, duration_ms).map(Settled::Journalled)
}

/// Journals the task dead with `error`, whatever retries it has left.
fn dead_at_once(
    ctx: &Ctx,
    task: &TaskInfo,
    attempt: u32,
    duration_ms: u64,
    exit: Option<i32>,
    error: String,
) -> Result<Settled> {
    let record = Record::finished(&task.id, attempt, duration_ms, Finish::Dead { exit, error })
        .with_result(reported(ctx, task, attempt));
    ctx.ledger.append(vec![record], Durability::Buffered)?;
    Ok(Settled::Journalled(Status::Dead))
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
    let record = Record::finished(&task.id, attempt, duration_ms, finish)
        .with_result(reported(ctx, task, attempt));
    ctx.ledger.append(vec![record], Durability::Buffered)?;
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
