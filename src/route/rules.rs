//! PURE routing rules: an artifact version + the config + the journal's state → the
//! tasks to queue, or why none may run. No I/O, so every rule is unit-tested on plain
//! data.

use crate::config::Config;
use anyhow::Result;

use crate::journal::{History, Reason, Record, TaskId};
use crate::workspace::RelPath;

/// An artifact version that became visible, and what is known about it.
#[derive(Debug, Clone)]
pub(crate) struct Arrival<'a> {
    pub(crate) path: &'a RelPath,
    pub(crate) hash: &'a str,
    /// The task whose commit produced this version, if any.
    pub(crate) producer: Option<&'a TaskId>,
    /// Front matter `to`: route to this agent only.
    pub(crate) to: Option<&'a str>,
    /// A brief the producer delegated (its front matter's `reply_to` names the producer):
    /// the producer's agent runs again as a join once it is settled.
    pub(crate) delegation: bool,
    /// Front matter `refs`, resolved and checked by the caller.
    pub(crate) refs: &'a [RelPath],
    /// Front matter `writes`: the narrowed scope asked for the task (empty: none).
    pub(crate) writes: &'a [String],
    /// Front matter `deadline`, read against the arrival's time.
    pub(crate) deadline: Option<std::time::SystemTime>,
    /// When it arrived: where `default_deadline` counts from.
    pub(crate) arrived: std::time::SystemTime,
    /// Front matter `budget`.
    pub(crate) budget: Option<f64>,
}

/// What to journal for an arrival: tasks to queue, and refusals to record.
pub(crate) fn route(cfg: &Config, state: &dyn History, arrival: &Arrival) -> Result<Vec<Record>> {
    let mut routed = Vec::new();
    let reject = |error: String| Record::Rejected {
        path: arrival.path.clone(),
        hash: Some(arrival.hash.to_string()),
        error,
    };
    let routed_reason = if arrival.delegation {
        Reason::Delegate
    } else {
        Reason::To
    };
    let (targets, reason): (Vec<&str>, Reason) = match arrival.to {
        Some(agent) if cfg.agents.contains_key(agent) => (vec![agent], routed_reason),
        Some(agent) => {
            routed.push(reject(unknown_to(cfg, agent)));
            return Ok(routed);
        }
        None => (
            cfg.agents
                .values()
                .filter(|a| a.triggered_by(arrival.path))
                .map(|a| a.name.as_str())
                .collect(),
            Reason::Glob,
        ),
    };
    if targets.is_empty() {
        return Ok(routed);
    }
    let parent = match arrival.producer {
        Some(p) => state.task(p)?,
        None => None,
    };
    let parent = parent.as_deref();
    let depth = parent.map_or(0, |p| p.depth + 1);
    if let (Some(parent), Some(to)) = (parent, arrival.to) {
        let allowed = cfg
            .agents
            .get(&parent.agent)
            .and_then(|a| a.delegates_to.as_ref());
        if let Some(allowed) = allowed.filter(|list| !list.iter().any(|a| a == to)) {
            routed.push(reject(format!(
                "not sent to `{to}`: agent `{}` may delegate only to {} (delegates_to)",
                parent.agent,
                if allowed.is_empty() {
                    "no agent".to_string()
                } else {
                    allowed.join(", ")
                }
            )));
            return Ok(routed);
        }
    }
    for agent in targets {
        let id = TaskId::derive(
            agent,
            arrival.path,
            arrival.hash,
            arrival.producer.map(TaskId::as_str),
        );
        if state.contains_task(&id)? {
            continue; // already handled: idempotent (DESIGN §4.3)
        }
        if depth > cfg.max_depth {
            routed.push(reject(format!(
                "not sent to `{agent}`: the delegation chain would be {depth} deep, over max_depth = {}",
                cfg.max_depth
            )));
            continue;
        }
        if let Some(looped) = cycle(state, arrival.producer, agent, arrival.hash)? {
            routed.push(reject(format!(
                "not sent to `{agent}`: a cycle — task {looped} of `{agent}` already ran on this content in the same chain"
            )));
            continue;
        }
        if let Some(parent) = parent {
            let fan_out = state
                .children(&parent.id)?
                .iter()
                .filter(|t| t.reason != Reason::Join)
                .count();
            if fan_out >= cfg.max_children as usize {
                routed.push(reject(format!(
                    "not sent to `{agent}`: task {} already started {fan_out} tasks, the most one task may start (max_children = {})",
                    parent.id, cfg.max_children
                )));
                continue;
            }
        }
        if let Err(why) = narrowing_allowed(cfg, parent, agent, arrival.writes) {
            routed.push(reject(format!("not sent to `{agent}`: {why}")));
            continue;
        }
        let (deadline, deadline_asked) = deadline_of(cfg, parent, arrival);
        let (budget, budget_asked) = budget_of(cfg, state, parent, arrival)?;
        routed.push(Record::Queued {
            task: id,
            agent: agent.to_string(),
            input: arrival.path.clone(),
            input_hash: arrival.hash.to_string(),
            parent: arrival.producer.cloned(),
            depth,
            reason,
            refs: arrival.refs.to_vec(),
            writes: arrival.writes.to_vec(),
            deadline,
            deadline_asked,
            budget,
            budget_asked,
        });
    }
    Ok(routed)
}

/// The deadline of a task the arrival starts (RFC 3339): what its brief asked, else
/// `default_deadline` from its arrival, never later than its delegator's (a child never
/// gets more than its delegator has left). With it, what was asked if it was capped.
fn deadline_of(
    cfg: &Config,
    parent: Option<&crate::journal::TaskInfo>,
    arrival: &Arrival,
) -> (Option<String>, Option<String>) {
    let inherited = parent
        .and_then(|p| p.deadline.as_deref())
        .and_then(crate::deadline::read);
    let asked = arrival.deadline.or_else(|| match inherited {
        Some(_) => None,
        None => cfg.default_deadline.map(|d| arrival.arrived + d),
    });
    match (asked, inherited) {
        (Some(asked), Some(limit)) if asked > limit => (
            Some(crate::deadline::format(limit)),
            Some(crate::deadline::format(asked)),
        ),
        (Some(asked), _) => (Some(crate::deadline::format(asked)), None),
        (None, limit) => (limit.map(crate::deadline::format), None),
    }
}

/// The budget of a task the arrival starts: what its brief asked, else `default_budget`
/// for a task no budgeted chain is above, never more than its delegator's chain has left
/// (which it inherits when it asks nothing). With it, what was asked if it was capped.
fn budget_of(
    cfg: &Config,
    state: &dyn History,
    parent: Option<&crate::journal::TaskInfo>,
    arrival: &Arrival,
) -> Result<(Option<f64>, Option<f64>)> {
    let left = match parent {
        Some(p) => crate::budget::left(state, p)?.map(|l| l.max(0.0)),
        None => None,
    };
    let asked = arrival.budget.or(if left.is_none() {
        cfg.default_budget
    } else {
        None
    });
    Ok(match (asked, left) {
        (Some(asked), Some(left)) if asked > left => (Some(left), Some(asked)),
        (Some(asked), _) => (Some(asked), None),
        (None, left) => (left, None),
    })
}

/// Whether `writes` (a delegation's narrowed scope for `agent`) may be asked: each entry
/// a stage or a folder in one, within `agent`'s own `writes` and, when a task delegated,
/// within what that task may write.
pub(crate) fn narrowing_allowed(
    cfg: &Config,
    parent: Option<&crate::journal::TaskInfo>,
    agent: &str,
    writes: &[String],
) -> Result<(), String> {
    let Some(own) = cfg.agents.get(agent) else {
        return Ok(());
    };
    for scope in writes {
        let Ok(path) = RelPath::new(scope) else {
            return Err(format!("`writes` entry {scope:?} is no workspace path"));
        };
        if !own.may_write(&path) {
            return Err(format!(
                "`writes` {scope} is outside its own writes [{}]",
                own.writes.join(", ")
            ));
        }
        let Some(parent) = parent else { continue };
        let within = if parent.writes.is_empty() {
            cfg.agents
                .get(&parent.agent)
                .is_some_and(|a| a.may_write(&path))
        } else {
            parent.writes.iter().any(|p| path.is_within(p))
        };
        if !within {
            let theirs = if parent.writes.is_empty() {
                cfg.agents
                    .get(&parent.agent)
                    .map(|a| a.writes.join(", "))
                    .unwrap_or_default()
            } else {
                parent.writes.join(", ")
            };
            return Err(format!(
                "`writes` {scope} is outside what its delegator `{}` may write [{theirs}]",
                parent.agent
            ));
        }
    }
    Ok(())
}

/// Why an artifact whose front matter says `to = "agent"` is refused, when no agent has
/// that name.
pub(crate) fn unknown_to(cfg: &Config, agent: &str) -> String {
    let known = cfg
        .agents
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    format!("`to = \"{agent}\"` names no agent: known agents are {known}")
}

/// The ancestor task, if any, in which `agent` already ran on content `hash`.
fn cycle(
    state: &dyn History,
    producer: Option<&TaskId>,
    agent: &str,
    hash: &str,
) -> Result<Option<TaskId>> {
    Ok(state
        .ancestors(producer)?
        .into_iter()
        .find(|t| t.agent == agent && t.input_hash == hash)
        .map(|t| t.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::JournalBuilder;
    use std::path::Path;

    fn cfg() -> Config {
        Config::parse(
            "[workspace]\nmax_depth = 2\n\
             [agents.writer]\non = [\"briefs/**/*.md\"]\nrun = \"true\"\n\
             [agents.reviewer]\non = [\"drafts/*.md\"]\nrun = \"true\"\n\
             [agents.legal]\nrun = \"true\"\n",
            Path::new("/"),
        )
        .unwrap()
    }

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    fn queued_agents(r: &[Record]) -> Vec<String> {
        r.iter()
            .filter_map(|r| match r {
                Record::Queued { agent, .. } => Some(agent.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn globs_pick_agents_and_ids_are_idempotent() {
        let cfg = cfg();
        let mut j = JournalBuilder::new();
        let path = p("briefs/sub/a.md");
        let arrival = Arrival {
            path: &path,
            hash: "h1",
            producer: None,
            to: None,
            delegation: false,
            refs: &[],
            writes: &[],
            deadline: None,
            arrived: std::time::SystemTime::UNIX_EPOCH,
            budget: None,
        };
        let r = route(&cfg, &j.state, &arrival).unwrap();
        assert_eq!(queued_agents(&r), vec!["writer"]);
        j.push_all(r);
        assert!(
            route(&cfg, &j.state, &arrival).unwrap().is_empty(),
            "the same version runs once"
        );
        let changed = Arrival {
            hash: "h2",
            ..arrival
        };
        assert_eq!(
            queued_agents(&route(&cfg, &j.state, &changed).unwrap()),
            vec!["writer"]
        );
    }

    #[test]
    fn to_routes_to_one_agent_or_rejects() {
        let cfg = cfg();
        let j = JournalBuilder::new();
        let path = p("briefs/a.md");
        let r = route(
            &cfg,
            &j.state,
            &Arrival {
                path: &path,
                hash: "h",
                producer: None,
                to: Some("legal"),
                delegation: false,
                refs: &[],
                writes: &[],
                deadline: None,
                arrived: std::time::SystemTime::UNIX_EPOCH,
                budget: None,
            },
        )
        .unwrap();
        assert_eq!(queued_agents(&r), vec!["legal"]);
        let r = route(
            &cfg,
            &j.state,
            &Arrival {
                path: &path,
                hash: "h",
                producer: None,
                to: Some("nobody"),
                delegation: false,
                refs: &[],
                writes: &[],
                deadline: None,
                arrived: std::time::SystemTime::UNIX_EPOCH,
                budget: None,
            },
        )
        .unwrap();
        match &r[..] {
            [Record::Rejected { error, .. }] => assert!(
                error.contains("known agents are legal, reviewer, writer"),
                "{error}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn depth_is_bounded() {
        let cfg = cfg();
        let mut j = JournalBuilder::new();
        let mut producer: Option<TaskId> = None;
        let mut refused = false;
        for i in 0..5 {
            let path = p(&format!("drafts/{i}.md"));
            let hash = format!("h{i}");
            let r = route(
                &cfg,
                &j.state,
                &Arrival {
                    path: &path,
                    hash: &hash,
                    producer: producer.as_ref(),
                    to: None,
                    delegation: false,
                    refs: &[],
                    writes: &[],
                    deadline: None,
                    arrived: std::time::SystemTime::UNIX_EPOCH,
                    budget: None,
                },
            )
            .unwrap();
            if let [Record::Rejected { error, .. }] = &r[..] {
                assert!(error.contains("over max_depth = 2"), "{error}");
                assert_eq!(i, 3);
                refused = true;
                break;
            }
            let Record::Queued { task, .. } = &r[0] else {
                panic!()
            };
            producer = Some(task.clone());
            j.push_all(r);
        }
        assert!(refused);
    }

    /// A task of `agent` queued on a human's brief, applied to the journal.
    fn root_task(cfg: &Config, j: &mut JournalBuilder, agent: &str) -> TaskId {
        let brief = p("briefs/req.md");
        let r = route(
            cfg,
            &j.state,
            &Arrival {
                path: &brief,
                hash: "h",
                producer: None,
                to: Some(agent),
                delegation: false,
                refs: &[],
                writes: &[],
                deadline: None,
                arrived: std::time::SystemTime::UNIX_EPOCH,
                budget: None,
            },
        )
        .unwrap();
        let Record::Queued { task, .. } = &r[0] else {
            panic!("{r:?}")
        };
        let task = task.clone();
        j.push_all(r);
        task
    }

    fn delegated<'a>(path: &'a RelPath, producer: &'a TaskId, to: &'a str) -> Arrival<'a> {
        Arrival {
            path,
            hash: path.as_str(),
            producer: Some(producer),
            to: Some(to),
            delegation: true,
            refs: &[],
            writes: &[],
            deadline: None,
            arrived: std::time::SystemTime::UNIX_EPOCH,
            budget: None,
        }
    }

    #[test]
    fn delegation_outside_delegates_to_is_refused() {
        let cfg = Config::parse(
            "[agents.manager]\nrun = \"true\"\ndelegates_to = [\"worker\"]\n\
             [agents.worker]\nrun = \"true\"\n[agents.legal]\nrun = \"true\"\n",
            Path::new("/"),
        )
        .unwrap();
        let mut j = JournalBuilder::new();
        let m = root_task(&cfg, &mut j, "manager");
        let a = p("briefs/a.md");
        let r = route(&cfg, &j.state, &delegated(&a, &m, "worker")).unwrap();
        assert!(
            matches!(
                &r[..],
                [Record::Queued {
                    reason: Reason::Delegate,
                    depth: 1,
                    ..
                }]
            ),
            "{r:?}"
        );
        let b = p("briefs/b.md");
        match &route(&cfg, &j.state, &delegated(&b, &m, "legal")).unwrap()[..] {
            [Record::Rejected { error, .. }] => assert!(
                error.contains("`manager` may delegate only to worker"),
                "{error}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fan_out_is_bounded_by_max_children() {
        let cfg = Config::parse(
            "[workspace]\nmax_children = 2\n\
             [agents.manager]\nrun = \"true\"\n[agents.worker]\nrun = \"true\"\n",
            Path::new("/"),
        )
        .unwrap();
        let mut j = JournalBuilder::new();
        let m = root_task(&cfg, &mut j, "manager");
        let mut outcomes = Vec::new();
        for i in 0..3 {
            let brief = p(&format!("briefs/{i}.md"));
            let r = route(&cfg, &j.state, &delegated(&brief, &m, "worker")).unwrap();
            outcomes.push(match &r[..] {
                [Record::Queued { .. }] => "queued".to_string(),
                [Record::Rejected { error, .. }] => error.clone(),
                other => panic!("{other:?}"),
            });
            j.push_all(r);
        }
        assert_eq!(outcomes[..2], ["queued", "queued"]);
        assert!(outcomes[2].contains("max_children = 2"), "{}", outcomes[2]);
    }

    #[test]
    fn cycles_are_refused() {
        let cfg = Config::parse(
            "[agents.a]\non = [\"drafts/*.md\"]\nrun = \"true\"\n",
            Path::new("/"),
        )
        .unwrap();
        let mut j = JournalBuilder::new();
        let first = p("drafts/x.md");
        let r = route(
            &cfg,
            &j.state,
            &Arrival {
                path: &first,
                hash: "same",
                producer: None,
                to: None,
                delegation: false,
                refs: &[],
                writes: &[],
                deadline: None,
                arrived: std::time::SystemTime::UNIX_EPOCH,
                budget: None,
            },
        )
        .unwrap();
        let Record::Queued { task, .. } = &r[0] else {
            panic!()
        };
        let task = task.clone();
        j.push_all(r);
        // The agent's output has the same content at another path: a loop.
        let copy = p("drafts/y.md");
        let r = route(
            &cfg,
            &j.state,
            &Arrival {
                path: &copy,
                hash: "same",
                producer: Some(&task),
                to: None,
                delegation: false,
                refs: &[],
                writes: &[],
                deadline: None,
                arrived: std::time::SystemTime::UNIX_EPOCH,
                budget: None,
            },
        )
        .unwrap();
        assert!(matches!(&r[..], [Record::Rejected { error, .. }] if error.contains("cycle")));
    }
}
