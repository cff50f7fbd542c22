//! `baton status [--json]`: agents, queue, running, held and dead tasks, from the
//! journal; works whether or not the daemon runs. One report is built, then shown as
//! text or as JSON, so both say the same.

use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::Style;
use crate::report::status::{Report, Row, with_report};
use crate::workspace::Workspace;

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
        let c = &a.card;
        let on = if c.on.is_empty() {
            "(routed only)".to_string()
        } else {
            c.on.join(" ")
        };
        let writes = if c.writes.is_empty() {
            "-".to_string()
        } else {
            c.writes.join(", ")
        };
        let rate = match (&c.rate, a.rate_limited) {
            (Some(rate), 0) => format!("  rate {rate}"),
            (Some(rate), n) => format!("  rate {rate}: {n} rate-limited"),
            (None, _) => String::new(),
        };
        println!(
            "  {:<14} {on} → {writes}   running {}/{}  queued {}{rate}",
            c.name, a.running, c.concurrency, a.queued
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
        "escalated to a person (their agents and fallbacks are spent)",
        r.escalated
            .iter()
            .map(|row| {
                let t = row.task;
                format!(
                    "{}  {}   baton resolve {} --file DEST=SRC | baton retry {} | baton cancel {}",
                    line(row),
                    t.error.as_deref().unwrap_or("dead"),
                    t.id,
                    t.id,
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
        "\n{} done, {} queued, {} running, {} retrying, {} held, {} escalated, {} dead",
        r.done,
        r.queued.len(),
        r.running.len() + r.committing.len() + r.interrupted.len(),
        r.retrying.len(),
        r.held.len(),
        r.escalated.len(),
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
