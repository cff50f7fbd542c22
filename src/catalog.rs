//! The agent catalog: what each agent is for and what bounds it works within, so a
//! person (`baton agents`), a manager agent (`task.json`'s `agents`) or an MCP client
//! (`list_agents`) can choose whom to hand work to by capability.

use serde::Serialize;

use crate::config::{Agent, Config};

/// One agent, as the catalog describes it.
#[derive(Debug, Serialize)]
pub(crate) struct Card<'a> {
    pub(crate) name: &'a str,
    /// What it does (`description` in baton.toml).
    pub(crate) description: Option<&'a str>,
    /// The globs that start it; empty: it runs only on what is delegated to it.
    pub(crate) on: &'a [String],
    /// The stages it may write.
    pub(crate) writes: &'a [String],
    /// The agents it may delegate to; null: any.
    pub(crate) delegates_to: Option<&'a [String]>,
    pub(crate) concurrency: usize,
    pub(crate) timeout_ms: u64,
    pub(crate) retries: u32,
    pub(crate) fatal_exits: &'a [i32],
    /// Who takes its dead tasks' input, in order (`human` last: a person).
    pub(crate) fallback: Vec<&'a str>,
    /// At most so many starts per interval (`rate`), like "20/1m"; null: no limit.
    pub(crate) rate: Option<String>,
}

impl<'a> Card<'a> {
    pub(crate) fn of(agent: &'a Agent) -> Card<'a> {
        Card {
            name: &agent.name,
            description: agent.description.as_deref(),
            on: &agent.on,
            writes: &agent.writes,
            delegates_to: agent.delegates_to.as_deref(),
            concurrency: agent.concurrency,
            timeout_ms: agent.timeout.as_millis() as u64,
            retries: agent.retries,
            fatal_exits: &agent.fatal_exits,
            fallback: agent.fallback.iter().map(|f| f.name()).collect(),
            rate: agent.rate.map(|r| r.to_string()),
        }
    }
}

/// The agents `from` may delegate to (its `delegates_to`, else every other agent), in
/// name order.
pub(crate) fn reachable_from<'a>(cfg: &'a Config, from: &str) -> Vec<Card<'a>> {
    let allowed = cfg.agents.get(from).and_then(|a| a.delegates_to.as_ref());
    cfg.agents
        .values()
        .filter(|a| match allowed {
            Some(list) => list.contains(&a.name),
            None => a.name != from,
        })
        .map(Card::of)
        .collect()
}
