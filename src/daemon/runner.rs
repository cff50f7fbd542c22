//! Running one attempt of one task: the agent protocol (DESIGN §3).
//!
//! A runner owns its child process: it starts it in its own process group with the
//! protocol's environment and a fresh staging tree, waits for it, a timeout or the
//! daemon's shutdown, stops whatever the agent left running, then settles the attempt.

use std::fs::File;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::{Ctx, commit, process};
use crate::config::Run;
use crate::journal::{Reason, Record, Status, TaskInfo};

/// One attempt to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub task: TaskInfo,
    pub attempt: u32,
}

/// How an attempt ended, for the scheduler: `None` when the daemon's shutdown
/// interrupted it (nothing journalled; it runs again at the next start).
#[derive(Debug)]
pub struct Ended {
    pub task: String,
    pub agent: String,
    pub status: Option<Status>,
    /// The runner panicked and the attempt could not be recorded.
    pub panicked: bool,
}

/// `exited` is called once the agent's process group is gone, before the attempt is
/// settled: the scheduler may start the next agent meanwhile.
pub async fn run(
    ctx: Arc<Ctx>,
    job: Job,
    mut stop: watch::Receiver<bool>,
    exited: impl FnOnce() + Send + 'static,
) -> Ended {
    let agent = ctx.cfg.agents[&job.task.agent].clone();
    let started = Instant::now();
    let mut job = job;
    let status = match spawn_agent(&ctx, &mut job).await {
        Err(e) => {
            let error = format!("could not start the agent: {e:#}");
            settle(&ctx, &job, started, move |ctx, task, attempt, ms| {
                commit::settle_failure(ctx, task, attempt, None, error, ms)
            })
            .await
        }
        Ok((mut child, pgid)) => {
            // Now that the agent runs: the folders are made while it works, never on
            // the path from an arrival (or a free slot) to an agent's start.
            ctx.spares.refill_in_background();
            let exit = tokio::select! {
                status = child.wait() => Some(status),
                _ = tokio::time::sleep(agent.timeout) => None,
                _ = stop.wait_for(|stopping| *stopping) => None,
            };
            let interrupted = *stop.borrow();
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
            exited();
            // Let the scheduler start the next agent before this attempt is settled.
            tokio::task::yield_now().await;
            match exit {
                None if interrupted => {
                    tracing::info!(task = %job.task.id, "interrupted by shutdown; it runs again at the next start");
                    None
                }
                None => {
                    let error = format!(
                        "timed out after {}",
                        humantime::format_duration(agent.timeout)
                    );
                    settle(&ctx, &job, started, move |ctx, task, attempt, ms| {
                        commit::settle_failure(ctx, task, attempt, None, error, ms)
                    })
                    .await
                }
                Some(Err(e)) => {
                    let error = format!("lost the agent process: {e}");
                    settle(&ctx, &job, started, move |ctx, task, attempt, ms| {
                        commit::settle_failure(ctx, task, attempt, None, error, ms)
                    })
                    .await
                }
                Some(Ok(status)) => {
                    if *stop.borrow() && !status.success() {
                        None // killed along with the daemon's shutdown: not the agent's failure
                    } else if status.success() {
                        settle(&ctx, &job, started, commit::settle_success).await
                    } else {
                        use std::os::unix::process::ExitStatusExt;
                        let code = status.code();
                        let error = match (code, status.signal()) {
                            (Some(75), _) => {
                                "exited with 75 (EX_TEMPFAIL: try again later)".to_string()
                            }
                            (Some(c), _) => format!("exited with status {c}"),
                            (None, Some(s)) => format!("killed by signal {s}"),
                            (None, None) => "ended abnormally".to_string(),
                        };
                        settle(&ctx, &job, started, move |ctx, task, attempt, ms| {
                            commit::settle_failure(ctx, task, attempt, code, error, ms)
                        })
                        .await
                    }
                }
            }
        }
    };
    Ended {
        task: job.task.id,
        agent: job.task.agent,
        status,
        panicked: false,
    }
}

/// Runs a settle step on the blocking pool; a failure to settle is logged (the task
/// stays unfinished in the journal and is recovered at the next start).
async fn settle<F>(ctx: &Arc<Ctx>, job: &Job, started: Instant, f: F) -> Option<Status>
where
    F: FnOnce(&Ctx, &TaskInfo, u32, u64) -> Result<Status> + Send + 'static,
{
    let ctx = ctx.clone();
    let job = job.clone();
    let ms = started.elapsed().as_millis() as u64;
    let id = job.task.id.clone();
    match tokio::task::spawn_blocking(move || f(&ctx, &job.task, job.attempt, ms)).await {
        Ok(Ok(status)) => Some(status),
        Ok(Err(e)) => {
            tracing::error!(task = %id, "could not settle the attempt: {e:#}");
            None
        }
        Err(e) => {
            tracing::error!(task = %id, "settling panicked: {e}");
            None
        }
    }
}

/// Prepares the attempt's folder, starts the agent and journals `task.started`, in one
/// trip to the blocking pool.
async fn spawn_agent(ctx: &Arc<Ctx>, job: &mut Job) -> Result<(Child, u32)> {
    let ctx = ctx.clone();
    let job2 = job.clone();
    let (child, pid, attempt) =
        tokio::task::spawn_blocking(move || -> Result<(Child, u32, u32)> {
            let (mut command, attempt) = prepare(&ctx, &job2)?;
            tracing::debug!(task = %job2.task.id, "prepared");
            let child = command
                .spawn()
                .with_context(|| format!("starting agent `{}`", job2.task.agent))?;
            let pid = child
                .id()
                .context("the agent exited before it could be tracked")?;
            tracing::info!(
                "{} started {} on {} (attempt {attempt}, pid {pid})",
                job2.task.agent,
                job2.task.id,
                job2.task.input
            );
            let start_time = process::start_time(pid).unwrap_or(0);
            let started = Record::Started {
                task: job2.task.id.clone(),
                attempt,
                pid,
                start_time,
            };
            ctx.append(vec![started], false)?;
            Ok((child, pid, attempt))
        })
        .await??;
    job.attempt = attempt;
    Ok((child, pid))
}

/// Claims a fresh attempt folder (task.json, out/, logs) and builds the command.
/// Returns the attempt number actually used: a folder left by an attempt the journal
/// never heard of (a crash between start and journalling) is skipped, so a stray
/// writer from that attempt can never leak into this one.
fn prepare(ctx: &Ctx, job: &Job) -> Result<(Command, u32)> {
    let task = &job.task;
    let mut attempt = job.attempt;
    let task_dir = ctx.ws.runs_dir().join(&task.id);
    let (dir, fresh) = if attempt == 1 && ctx.spares.install(&task_dir) {
        (ctx.ws.attempt_dir(&task.id, 1), false)
    } else {
        std::fs::create_dir_all(&task_dir)
            .with_context(|| format!("creating {}", task_dir.display()))?;
        let dir = loop {
            let dir = ctx.ws.attempt_dir(&task.id, attempt);
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => attempt += 1,
                Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
            }
        };
        std::fs::create_dir(dir.join("out"))
            .with_context(|| format!("creating {}", dir.join("out").display()))?;
        (dir, true)
    };
    let out = dir.join("out");
    let task_file = dir.join("task.json");
    let chain = ctx.chain(task);
    let join = task.reason == Reason::Join;
    let children = if join {
        crate::join::report(&ctx.ledger().state, task)
    } else {
        Vec::new()
    };
    let doc = serde_json::json!({
        "task": task.id,
        "agent": task.agent,
        "input": task.input,
        "input_hash": task.input_hash,
        "parent": task.parent,
        "depth": task.depth,
        "attempt": attempt,
        "reason": task.reason,
        "join": join,
        "workspace": ctx.ws.root,
        "out": out,
        "refs": task.refs,
        "chain": chain,
        "children": children,
    });
    // The attempt folder is new (or a skeleton's, whose files are empty): create or
    // open without O_TRUNC, which would make ext4 flush the file on close.
    let open_new = |name: &str| -> std::io::Result<File> {
        let path = dir.join(name);
        if fresh {
            File::options().write(true).create_new(true).open(path)
        } else {
            File::options().write(true).open(path)
        }
    };
    open_new("task.json")
        .and_then(|mut f| std::io::Write::write_all(&mut f, &serde_json::to_vec_pretty(&doc)?))
        .with_context(|| format!("writing {}", task_file.display()))?;
    let open_log = open_new;
    let stdout = open_log("stdout.log")?;
    let stderr = open_log("stderr.log")?;

    let agent = &ctx.cfg.agents[&task.agent];
    let mut command = match &agent.run {
        Run::Shell(script) => {
            let mut c = Command::new(ctx.program("sh"));
            c.arg("-c").arg(script);
            c
        }
        Run::Argv(argv) => {
            let subst = |arg: &str| {
                arg.replace("{input}", task.input.as_str())
                    .replace("{out}", &out.to_string_lossy())
                    .replace("{task}", &task.id)
            };
            let mut c = Command::new(ctx.program(&subst(&argv[0])));
            c.args(argv[1..].iter().map(|a| subst(a)));
            c
        }
    };
    command
        .current_dir(&ctx.ws.root)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .env("BATON_WORKSPACE", &ctx.ws.root)
        .env("BATON_INPUT", task.input.as_str())
        .env("BATON_OUT", &out)
        .env("BATON_TASK", &task.id)
        .env("BATON_PARENT", task.parent.as_deref().unwrap_or(""))
        .env("BATON_DEPTH", task.depth.to_string())
        .env("BATON_AGENT", &task.agent)
        .env("BATON_ATTEMPT", attempt.to_string())
        .env("BATON_JOIN", if join { "1" } else { "0" })
        .env("BATON_TASK_FILE", &task_file)
        .env("BATON_BIN", &ctx.baton_bin)
        .env("PATH", &ctx.agent_path);
    Ok((command, attempt))
}
