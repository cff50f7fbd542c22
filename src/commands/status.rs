//! `baton status [--json]`: agents, queue, running, held and dead tasks, from the
//! journal; works whether or not the daemon runs. One report is built, then shown as
//! text or as JSON, so both say the same.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde::Serialize;

use super::Style;
use crate::config::ConfigError;
use crate::journal::{TaskInfo, TaskStatus};
use crate::pidfile::running_daemon;
use crate::store::Store;
use crate::workspace::{RelPath, Workspace};

/// Dead tasks listed, the most recent; the rest are counted (`baton log` has them all).
const DEAD_SHOWN: usize = 50;

/// What `baton status` reports: what is true now.
#[derive(Serialize)]
struct Report<'a> {
    workspace: &'a Path,
    daemon: Daemon,
    /// What is wrong with `baton.toml` as it is now, if it does not load.
    #[serde(skip_serializing_if = "Option::is_none")]
    config_error: Option<&'a str>,
    agents: Vec<AgentLoad<'a>>,
    /// With a daemon running: its running tasks.
    running: Vec<Row<'a>>,
    committing: Vec<Row<'a>>,
    /// Without a daemon: the tasks that were running when it stopped; they run again
    /// at the next start.
    interrupted: Vec<Row<'a>>,
    queued: Vec<Row<'a>>,
    retrying: Vec<Row<'a>>,
    held: Vec<Row<'a>>,
    waiting: Vec<Waiting<'a>>,
    /// The most recent dead tasks, up to [`DEAD_SHOWN`].
    dead: Vec<Row<'a>>,
    /// How many tasks are dead in all.
    dead_total: usize,
    done: usize,
    /// Versions rejected that are still what the stages hold.
    rejected: Vec<Rejection<'a>>,
}

#[derive(Serialize)]
struct Daemon {
    running: bool,
    pid: Option<u32>,
    /// The config the daemon last said it runs (the hash of `baton.toml`), and whether
    /// that is what the file holds now.
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<ConfigRun>,
}

#[derive(Serialize)]
struct ConfigRun {
    hash: String,
    loaded_ts: String,
    matches_file: bool,
}

#[derive(Serialize)]
struct AgentLoad<'a> {
    name: &'a str,
    on: &'a [String],
    writes: &'a [String],
    concurrency: usize,
    running: usize,
    queued: usize,
    /// Why its program cannot be started, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    broken: Option<String>,
}

/// A task, with what is true of it now.
#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    task: &'a TaskInfo,
    /// For a running task: how long its attempt has run.
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_ms: Option<u64>,
    /// For a retrying task: when its next attempt is due (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_ts: Option<String>,
}

#[derive(Serialize)]
struct Waiting<'a> {
    id: &'a str,
    agent: &'a str,
    input: &'a RelPath,
    settled: usize,
    delegated: usize,
}

#[derive(Serialize)]
struct Rejection<'a> {
    path: &'a RelPath,
    hash: &'a str,
    error: &'a str,
}

pub(crate) fn run(ws: &Workspace, as_json: bool) -> Result<u8> {
    with_report(ws, |report, now| {
        if as_json {
            println!("{}", serde_json::to_string_pretty(report)?);
        } else {
            print_text(report, now);
        }
        Ok(0)
    })
}

/// What `baton status --json` prints, as a value (for `baton mcp`).
pub(crate) fn overview(ws: &Workspace) -> Result<serde_json::Value> {
    with_report(ws, |report, _| Ok(serde_json::to_value(report)?))
}

/// Builds the report of what is true now and hands it to `show`.
fn with_report<R>(
    ws: &Workspace,
    show: impl FnOnce(&Report, SystemTime) -> Result<R>,
) -> Result<R> {
    let daemon = running_daemon(ws);
    // A broken baton.toml stops every command but this one while a daemon runs: the
    // daemon goes on with the config it has, and status says so.
    let (cfg, config_error) = match super::common::config(ws) {
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
            .map(|a| AgentLoad {
                name: &a.name,
                on: &a.on,
                writes: &a.writes,
                concurrency: a.concurrency,
                running: with(TaskStatus::Running)
                    .filter(|t| t.agent == a.name)
                    .count(),
                queued: with(TaskStatus::Queued)
                    .filter(|t| t.agent == a.name)
                    .count(),
                broken: a.broken.as_ref().map(|e| e.message.clone()),
            })
            .collect(),
        running,
        committing,
        interrupted,
        queued: rows(TaskStatus::Queued),
        retrying: rows(TaskStatus::Failed),
        held: rows(TaskStatus::Held),
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

/// A duration as a person reads it, to the second.
fn human(ms: u64) -> String {
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

fn print_text(r: &Report, now: SystemTime) {
    let st = Style::stdout();
    match r.daemon.pid {
        Some(pid) => println!(
            "{} {}  daemon running (pid {pid})",
            st.bold("workspace"),
            r.workspace.display()
        ),
        None => println!(
            "{} {}  no daemon running",
            st.bold("workspace"),
            r.workspace.display()
        ),
    }
    if let (Some(_), Some(config)) = (r.daemon.pid, &r.daemon.config) {
        if config.matches_file {
            println!("  it runs baton.toml as loaded at {}", config.loaded_ts);
        } else {
            println!(
                "  it runs baton.toml as loaded at {}; {}",
                config.loaded_ts,
                st.yellow("the file differs now (an edit it could not apply is in its log)")
            );
        }
    }
    if let Some(error) = r.config_error {
        println!("  {}\n{error}", st.red("baton.toml does not load now:"));
    }
    println!("\n{}", st.bold("agents"));
    for a in &r.agents {
        let on = if a.on.is_empty() {
            "(routed only)".to_string()
        } else {
            a.on.join(" ")
        };
        let writes = if a.writes.is_empty() {
            "-".to_string()
        } else {
            a.writes.join(", ")
        };
        println!(
            "  {:<14} {on} → {writes}   running {}/{}  queued {}",
            a.name, a.running, a.concurrency, a.queued
        );
        if let Some(broken) = &a.broken {
            println!(
                "  {:<14} {}",
                "",
                st.red(&format!("cannot start: {broken}"))
            );
        }
    }
    let section = |title: &str, items: Vec<String>| {
        if !items.is_empty() {
            println!("\n{} ({})", st.bold(title), items.len());
            for item in items {
                println!("  {item}");
            }
        }
    };
    let line = |row: &Row| format!("{}  {:<12} {}", row.task.id, row.task.agent, row.task.input);
    section(
        "running",
        r.running
            .iter()
            .chain(&r.committing)
            .map(|row| {
                let for_how_long = row
                    .elapsed_ms
                    .map_or(String::new(), |ms| format!(", for {}", human(ms)));
                let sandbox = row.task.sandbox.unwrap_or_default().as_str();
                format!(
                    "{}  attempt {}{for_how_long}, sandbox {sandbox}",
                    line(row),
                    row.task.attempt
                )
            })
            .collect(),
    );
    section(
        "interrupted (they run again at the next start)",
        r.interrupted
            .iter()
            .map(|row| format!("{}  attempt {}", line(row), row.task.attempt))
            .collect(),
    );
    section(
        "waiting for delegated work (then their join runs)",
        r.waiting
            .iter()
            .map(|w| {
                format!(
                    "{}  {:<12} {}  {} of {} delegated briefs settled",
                    w.id, w.agent, w.input, w.settled, w.delegated
                )
            })
            .collect(),
    );
    section("queued", r.queued.iter().map(line).collect());
    section(
        "retrying",
        r.retrying
            .iter()
            .map(|row| {
                let due = row
                    .task
                    .retry_at
                    .and_then(|at| at.duration_since(now).ok())
                    .map_or_else(
                        || "due now".to_string(),
                        |d| format!("next attempt in {}", human(d.as_millis() as u64)),
                    );
                let error = row.task.error.as_deref().unwrap_or("failed");
                format!("{}  {error}; {due}", line(row))
            })
            .collect(),
    );
    section(
        "held for approval",
        r.held
            .iter()
            .map(|row| {
                let t = row.task;
                let outs: Vec<&str> = t.outputs.iter().map(|o| o.path.as_str()).collect();
                format!(
                    "{}  {:<12} → {}   baton approve {}",
                    t.id,
                    t.agent,
                    outs.join(", "),
                    t.id
                )
            })
            .collect(),
    );
    section(
        "dead",
        r.dead
            .iter()
            .map(|row| {
                let t = row.task;
                format!(
                    "{}  {:<12} {}  {}   {}",
                    st.red(t.id.as_str()),
                    t.agent,
                    t.input,
                    t.error.as_deref().unwrap_or("dead"),
                    st.dim(&format!("baton logs {}", t.id))
                )
            })
            .collect(),
    );
    section(
        "rejected",
        r.rejected
            .iter()
            .map(|j| format!("{}  {}", j.path, j.error))
            .collect(),
    );
    println!(
        "\n{} done, {} queued, {} running, {} retrying, {} held, {} dead",
        r.done,
        r.queued.len(),
        r.running.len() + r.committing.len() + r.interrupted.len(),
        r.retrying.len(),
        r.held.len(),
        r.dead_total,
    );
    if r.dead_total > r.dead.len() {
        println!(
            "{}",
            st.dim(&format!(
                "(the last {} dead shown; `baton log --json | jq` has them all)",
                r.dead.len()
            ))
        );
    }
}
