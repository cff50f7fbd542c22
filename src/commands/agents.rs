//! `baton agents [--json]`: the agent catalog (issue 15): each agent with its
//! description, triggers, writes, delegates_to, limits and current load. The same
//! entries as `baton status`'s agents, so both say the same.

use std::time::Duration;

use anyhow::Result;

use super::Style;
use crate::report::status::with_report;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, as_json: bool) -> Result<u8> {
    with_report(ws, |report, _| {
        if as_json {
            let doc = serde_json::json!({ "agents": report.agents });
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(0);
        }
        let st = Style::stdout();
        for (i, a) in report.agents.iter().enumerate() {
            let c = &a.card;
            if i > 0 {
                println!();
            }
            match c.description {
                Some(d) => println!("{}  {d}", st.bold(c.name)),
                None => println!("{}  {}", st.bold(c.name), st.dim("(no description)")),
            }
            let on = if c.on.is_empty() {
                "only what is delegated to it".to_string()
            } else {
                c.on.join(" ")
            };
            let delegates = match c.delegates_to {
                None => "any agent".to_string(),
                Some([]) => "no agent".to_string(),
                Some(list) => list.join(", "),
            };
            println!("  on       {on}");
            println!("  writes   {}", c.writes.join(", "));
            println!("  delegates to {delegates}");
            let mut limits = format!(
                "timeout {}, retries {}, concurrency {}",
                humantime::format_duration(Duration::from_millis(c.timeout_ms)),
                c.retries,
                c.concurrency
            );
            if let Some(rate) = &c.rate {
                limits.push_str(&format!(", rate {rate}"));
            }
            if !c.fatal_exits.is_empty() {
                let codes: Vec<String> = c.fatal_exits.iter().map(i32::to_string).collect();
                limits.push_str(&format!(", fatal exits {}", codes.join(" ")));
            }
            println!("  limits   {limits}");
            if !c.fallback.is_empty() {
                println!("  fallback {}", c.fallback.join(" → "));
            }
            println!(
                "  now      running {}, queued {} ({} rate-limited)",
                a.running, a.queued, a.rate_limited
            );
            if let Some(broken) = &a.broken {
                println!("  {}", st.red(&format!("cannot start: {broken}")));
            }
        }
        Ok(0)
    })
}
