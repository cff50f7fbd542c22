//! What `baton status` reports, built once: shown as text or JSON by the command, and
//! returned as a value by `baton mcp` (`task_status`, `baton://status`).

use std::path::Path;
use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;

use crate::catalog::Card;
use crate::config::ConfigError;
use crate::journal::{TaskInfo, TaskStatus};
use crate::pidfile::running_daemon;
use crate::store::Store;
use crate::workspace::{RelPath, Workspace};

/// Dead tasks listed, the most recent; the rest are counted (`baton log` has them all).
pub(crate) const DEAD_SHOWN: usize = 50;

/// What `baton status` reports: what is true now.
#[derive(Serialize)]
pub(crate) struct Report<'a> {
    pub(crate) workspace: &'a Path,
    pub(crate) daemon: Daemon,
    /// What is wrong with `baton.toml` as it is now, if it does not load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) config_error: Option<&'a str>,
    pub(crate) agents: Vec<AgentLoad<'a>>,
    /// With a daemon running: its running tasks.
    pub(crate) running: Vec<Row<'a>>,
    pub(crate) committing: Vec<Row<'a>>,
    /// Without a daemon: the tasks that were running when it stopped; they run again
    /// at the next start.
    pub(crate) interrupted: Vec<Row<'a>>,
    pub(crate) queued: Vec<Row<'a>>,
    pub(crate) retrying: Vec<Row<'a>>,
    pub(crate) held: Vec<Row<'a>>,
    /// Dead, and waiting for a person: their `fallback` list ended at `human`.
    pub(crate) escalated: Vec<Row<'a>>,
    pub(crate) waiting: Vec<Waiting<'a>>,
    /// The most recent dead tasks, up to [`DEAD_SHOWN`].
    pub(crate) dead: Vec<Row<'a>>,
    /// How many tasks are dead in all.
    pub(crate) dead_total: usize,
    pub(crate) done: usize,
    /// Versions rejected that are still what the stages hold.
    pub(crate) rejected: Vec<Rejection<'a>>,
}

#[derive(Serialize)]
pub(crate) struct Daemon {
    pub(crate) running: bool,
    pub(crate) pid: Option<u32>,
    /// The config the daemon last said it runs (the hash of `baton.toml`), and whether
    /// that is what the file holds now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) config: Option<ConfigRun>,
}

#[derive(Serialize)]
pub(crate) struct ConfigRun {
    pub(crate) hash: String,
    pub(crate) loaded_ts: String,
    pub(crate) matches_file: bool,
}

#[derive(Serialize)]
pub(crate) struct AgentLoad<'a> {
    #[serde(flatten)]
    pub(crate) card: Card<'a>,
    pub(crate) running: usize,
    pub(crate) queued: usize,
    /// Of the queued, those held back by the agent's `rate`: with a daemon running, a
    /// rate set, and a free slot, a queued task waits for nothing else.
    pub(crate) rate_limited: usize,
    /// Why its program cannot be started, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) broken: Option<String>,
}

/// A task, with what is true of it now.
#[derive(Serialize)]
pub(crate) struct Row<'a> {
    #[serde(flatten)]
    pub(crate) task: &'a TaskInfo,
    /// For a running task: how long its attempt has run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) elapsed_ms: Option<u64>,
    /// For a retrying task: when its next attempt is due (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_attempt_ts: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct Waiting<'a> {
    pub(crate) id: &'a str,
    pub(crate) agent: &'a str,
    pub(crate) input: &'a RelPath,
    pub(crate) settled: usize,
    pub(crate) delegated: usize,
}

#[derive(Serialize)]
pub(crate) struct Rejection<'a> {
    pub(crate) path: &'a RelPath,
    pub(crate) hash: &'a str,
    pub(crate) error: &'a str,
}

/// What `baton status --json` prints, as a value (for `baton mcp`).
pub(crate) fn overview(ws: &Workspace) -> Result<serde_json::Value> {
    with_report(ws, |report, _| Ok(serde_json::to_value(report)?))
}

/// Builds the report of what is true now and hands it to `show`.
pub(crate) fn with_report<R>(
    ws: &Workspace,
    show: impl FnOnce(&Report, SystemTime) -> Result<R>,
) -> Result<R> {
    let daemon = running_daemon(ws);
    // A broken baton.toml stops every command but this one while a daemon runs: the
    // daemon goes on with the config it has, and status says so.
    let (cfg, config_error) = match crate::config::load_for_command(ws) {
        Ok(cfg) => (Some(cfg), None),
        Err(e) if daemon.is_some() && e.is::<ConfigError>() => (None, Some(format!("{e:#}"))),
        Err(e) => return Err(e),
    };
    let store = Store::open(ws)?;
    let now = SystemTime::now();
    // Only what is not over, and the last of what died: the cost follows the live work.
    let unfinished = store.unfinished()?;
    let dead_tasks = store.tasks_with(TaskStatus::Dead, Some(DEAD_SHOWN))?;
    let awaiting = store.awaiting_joins()?;
    let with = |s: TaskStatus| {
        unfinished
            .iter()
            .chain(&dead_tasks)
            .filter(move |t| t.status == s)
    };
    let rows = |s: TaskStatus| -> Vec<Row> {
        with(s)
            .map(|t| Row {
                task: t,
                elapsed_ms: match s {
                    TaskStatus::Running | TaskStatus::Committing => elapsed(t, now),
                    _ => None,
                },
                next_attempt_ts: match s {
                    TaskStatus::Failed => t
                        .retry_at
                        .map(|at| humantime::format_rfc3339_millis(at).to_string()),
                    _ => None,
                },
            })
            .collect()
    };
    let standing = store.standing_rejections()?;
    let mut rejected: Vec<Rejection> = standing
        .iter()
        .filter(|(path, _, _)| path.is_on_disk(&ws.root))
        .map(|(path, hash, error)| Rejection { path, hash, error })
        .collect();
    rejected.sort_by(|a, b| a.path.cmp(b.path));
    let (running, committing, interrupted) = match daemon {
        Some(_) => (
            rows(TaskStatus::Running),
            rows(TaskStatus::Committing),
            Vec::new(),
        ),
        None => {
            let mut interrupted = rows(TaskStatus::Running);
            interrupted.extend(rows(TaskStatus::Committing));
            for row in &mut interrupted {
                row.elapsed_ms = None;
            }
            (Vec::new(), Vec::new(), interrupted)
        }
    };
    let report = Report {
        workspace: &ws.root,
        daemon: Daemon {
            running: daemon.is_some(),
            pid: daemon,
            config: store.config()?.map(|(hash, loaded_ts)| ConfigRun {
                matches_file: hash == crate::daemon::config_hash(ws),
                hash,
                loaded_ts,
            }),
        },
        config_error: config_error.as_deref(),
        agents: cfg
            .iter()
            .flat_map(|cfg| cfg.agents.values())
            .map(|a| {
                let count = |s: TaskStatus| with(s).filter(|t| t.agent == a.name).count();
                let (running, queued) = (count(TaskStatus::Running), count(TaskStatus::Queued));
                let rate_bound = daemon.is_some() && a.rate.is_some() && running < a.concurrency;
                AgentLoad {
                    card: Card::of(a),
                    running,
                    queued,
                    rate_limited: if rate_bound { queued } else { 0 },
                    broken: a.broken.as_ref().map(|e| e.message.clone()),
                }
            })
            .collect(),
        running,
        committing,
        interrupted,
        queued: rows(TaskStatus::Queued),
        retrying: rows(TaskStatus::Failed),
        held: rows(TaskStatus::Held),
        escalated: rows(TaskStatus::Escalated),
        waiting: {
            let mut waiting = Vec::new();
            for t in &awaiting {
                if let Some((settled, delegated)) = crate::join::waiting(&store, t)? {
                    waiting.push(Waiting {
                        id: t.id.as_str(),
                        agent: &t.agent,
                        input: &t.input,
                        settled,
                        delegated,
                    });
                }
            }
            waiting
        },
        dead: rows(TaskStatus::Dead),
        dead_total: store.count(TaskStatus::Dead)?,
        done: store.count(TaskStatus::Done)?,
        rejected,
    };
    show(&report, now)
}

/// How long the attempt of a running task has run, from its `task.started` record.
fn elapsed(t: &TaskInfo, now: SystemTime) -> Option<u64> {
    let started = humantime::parse_rfc3339(t.started_ts.as_deref()?).ok()?;
    Some(now.duration_since(started).unwrap_or_default().as_millis() as u64)
}
