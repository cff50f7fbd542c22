//! `baton status [--json]`: agents, queue, running, held and dead tasks, from the
//! journal; works whether or not the daemon runs.

use std::time::SystemTime;

use anyhow::Result;
use serde_json::json;

use super::Style;
use crate::journal::{self, State, TaskInfo, TaskStatus};
use crate::pidfile::running_daemon;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, as_json: bool) -> Result<u8> {
    let cfg = super::common::config(ws)?;
    let state = State::replay(&journal::read_all(ws)?);
    let daemon = running_daemon(ws);
    let tasks: Vec<&TaskInfo> = state
        .order
        .iter()
        .filter_map(|id| state.tasks.get(id))
        .collect();
    let with = |s: TaskStatus| tasks.iter().copied().filter(move |t| t.status == s);

    if as_json {
        let list = |s: TaskStatus| with(s).map(task_json).collect::<Vec<_>>();
        let agents: Vec<_> = cfg
            .agents
            .values()
            .map(|a| {
                let running = with(TaskStatus::Running).filter(|t| t.agent == a.name).count();
                let queued = with(TaskStatus::Queued).filter(|t| t.agent == a.name).count();
                json!({ "name": a.name, "on": a.on, "writes": a.writes, "concurrency": a.concurrency, "running": running, "queued": queued })
            })
            .collect();
        let rejected: Vec<_> = state
            .rejected
            .iter()
            .map(|((path, hash), error)| json!({ "path": path, "hash": hash, "error": error }))
            .collect();
        let doc = json!({
            "workspace": ws.root,
            "daemon": { "running": daemon.is_some(), "pid": daemon },
            "agents": agents,
            "running": list(TaskStatus::Running),
            "committing": list(TaskStatus::Committing),
            "queued": list(TaskStatus::Queued),
            "retrying": list(TaskStatus::Failed),
            "held": list(TaskStatus::Held),
            "waiting": tasks
                .iter()
                .filter_map(|t| crate::join::waiting(&state, t).map(|(settled, total)| {
                    json!({ "id": t.id, "agent": t.agent, "input": t.input, "settled": settled, "delegated": total })
                }))
                .collect::<Vec<_>>(),
            "dead": list(TaskStatus::Dead),
            "done": with(TaskStatus::Done).count(),
            "rejected": rejected,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }

    let st = Style::stdout();
    match daemon {
        Some(pid) => println!(
            "{} {}  daemon running (pid {pid})",
            st.bold("workspace"),
            ws.root.display()
        ),
        None => println!(
            "{} {}  no daemon running",
            st.bold("workspace"),
            ws.root.display()
        ),
    }
    println!("\n{}", st.bold("agents"));
    for a in cfg.agents.values() {
        let running = with(TaskStatus::Running)
            .filter(|t| t.agent == a.name)
            .count();
        let queued = with(TaskStatus::Queued)
            .filter(|t| t.agent == a.name)
            .count();
        let on = if a.on.is_empty() {
            "(routed only)".to_string()
        } else {
            a.on.join(" ")
        };
        println!(
            "  {:<14} {} → {}   running {running}/{}  queued {queued}",
            a.name,
            on,
            if a.writes.is_empty() {
                "-".to_string()
            } else {
                a.writes.join(", ")
            },
            a.concurrency
        );
    }
    let section = |title: &str, items: Vec<String>| {
        if !items.is_empty() {
            println!("\n{} ({})", st.bold(title), items.len());
            for item in items {
                println!("  {item}");
            }
        }
    };
    let running_title = if daemon.is_some() {
        "running"
    } else {
        "interrupted (they run again at the next start)"
    };
    section(
        running_title,
        with(TaskStatus::Running)
            .chain(with(TaskStatus::Committing))
            .map(|t| {
                format!(
                    "{}  {:<12} {}  attempt {}",
                    t.id, t.agent, t.input, t.attempt
                )
            })
            .collect(),
    );
    section(
        "waiting for delegated work (then their join runs)",
        tasks
            .iter()
            .filter_map(|t| crate::join::waiting(&state, t).map(|w| (t, w)))
            .map(|(t, (settled, total))| {
                format!(
                    "{}  {:<12} {}  {settled} of {total} delegated briefs settled",
                    t.id, t.agent, t.input
                )
            })
            .collect(),
    );
    section(
        "queued",
        with(TaskStatus::Queued)
            .map(|t| format!("{}  {:<12} {}", t.id, t.agent, t.input))
            .collect(),
    );
    section(
        "retrying",
        with(TaskStatus::Failed)
            .map(|t| {
                let due = t
                    .retry_at
                    .and_then(|at| at.duration_since(SystemTime::now()).ok())
                    .map_or_else(
                        || "due now".to_string(),
                        |d| {
                            format!(
                                "next attempt in {}",
                                humantime::format_duration(std::time::Duration::from_secs(
                                    d.as_secs()
                                ))
                            )
                        },
                    );
                format!(
                    "{}  {:<12} {}  {}; {due}",
                    t.id,
                    t.agent,
                    t.input,
                    t.error.as_deref().unwrap_or("failed")
                )
            })
            .collect(),
    );
    section(
        "held for approval",
        with(TaskStatus::Held)
            .map(|t| {
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
        with(TaskStatus::Dead)
            .map(|t| {
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
    let mut rejected: Vec<String> = state
        .rejected
        .iter()
        .map(|((p, _), e)| format!("{p}  {e}"))
        .collect();
    rejected.sort();
    section("rejected", rejected);
    println!(
        "\n{} done, {} queued, {} running, {} retrying, {} held, {} dead",
        with(TaskStatus::Done).count(),
        with(TaskStatus::Queued).count(),
        with(TaskStatus::Running).count() + with(TaskStatus::Committing).count(),
        with(TaskStatus::Failed).count(),
        with(TaskStatus::Held).count(),
        with(TaskStatus::Dead).count(),
    );
    Ok(0)
}

fn task_json(t: &TaskInfo) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or_default()
}
