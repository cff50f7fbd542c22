//! `baton run [--once]`: the daemon in the foreground.

use std::io::{IsTerminal, Write};

use anyhow::Result;

use crate::config::Config;
use crate::daemon::{self, Until};
use crate::workspace::Workspace;

/// The exit code of a `--once` run stopped by SIGINT or SIGTERM, as a shell reports a
/// program killed by SIGINT.
const INTERRUPTED: u8 = 130;

pub(crate) fn run(ws: &Workspace, once: bool) -> Result<u8> {
    let cfg = Config::load(ws)?;
    cfg.check_runnable()?;
    let until = if once { Until::Idle } else { Until::Shutdown };
    if std::io::stderr().is_terminal() {
        banner(ws, &cfg, until);
    }
    let summary = daemon::run_in_foreground(ws, cfg, until)?;
    if until == Until::Idle {
        // A closed stderr is no reason to fail a run that did its work.
        let _ = writeln!(
            std::io::stderr(),
            "baton: {} done, {} dead, {} held{}",
            summary.done,
            summary.dead,
            summary.held,
            if summary.failed_attempts > 0 {
                format!(" ({} failed attempts retried)", summary.failed_attempts)
            } else {
                String::new()
            }
        );
    }
    if summary.disk_full {
        let _ = writeln!(
            std::io::stderr(),
            "baton: the disk stayed full, so work was left undone; free space and run again"
        );
        return Ok(1);
    }
    if until == Until::Idle && summary.interrupted {
        let _ = writeln!(
            std::io::stderr(),
            "baton: interrupted before the work was drained; what was running runs again at the next start"
        );
        return Ok(INTERRUPTED);
    }
    Ok(if summary.dead > 0 { 1 } else { 0 })
}

/// What the daemon is about to do, for a person at a terminal: what it watches, which
/// agents, and how to stop it.
fn banner(ws: &Workspace, cfg: &Config, until: Until) {
    let st = super::Style::stderr();
    let stages: Vec<String> = cfg.stages.iter().map(|s| format!("{s}/")).collect();
    let mut text = format!(
        "{} {} in {}\n",
        st.bold("baton: watching"),
        stages.join(", "),
        ws.root.display()
    );
    for agent in cfg.agents.values() {
        let on = if agent.on.is_empty() {
            "(routed only)".to_string()
        } else {
            agent.on.join(" ")
        };
        let writes = if agent.writes.is_empty() {
            "-".to_string()
        } else {
            agent.writes.join(", ")
        };
        text.push_str(&format!("  {:<14} {on} → {writes}\n", agent.name));
    }
    text.push_str(&match until {
        Until::Idle => "  it drains what is pending, then exits; Ctrl-C stops it sooner\n".to_string(),
        Until::Shutdown => "  Ctrl-C or `baton stop` stops it; `baton status` and `baton log -f` show what it does\n".to_string(),
    });
    let _ = std::io::stderr().write_all(text.as_bytes());
}
