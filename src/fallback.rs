//! PURE fallbacks (issue 15): who takes a dead task's input next. State in, records out.
//!
//! A task whose attempts are spent (or that hit one of its `fatal_exits`) is dead; its
//! input then goes to the next entry of the *primary's* `fallback` list, the primary
//! being the agent whose task began this run of fallbacks. An agent's entry is a new
//! task on the same input (reason `fallback`, parent the dead task, the same depth,
//! deadline and narrowed writes, and what the chain has left to spend). `human` holds
//! the dead task as escalated, for a person. The list is walked once, to its end: a
//! fallback's own `fallback` list is not used for the work it took over, and the config
//! refuses cycles.
//!
//! The fallback's id is derived from the dead task's, so queuing it is idempotent.

use anyhow::Result;
use serde_json::{Value, json};

use crate::config::{Config, Fallback};
use crate::journal::{History, Reason, Record, TaskId, TaskInfo};

/// Bounds the walk over a corrupt journal whose parent links loop.
const MAX_NESTING: usize = 1_000;

/// What follows the death of `dead` (its record not yet applied; its last attempt
/// reported `cost`): its fallback queued, or its escalation to a person, with any entry
/// skipped on the way (journalled as a rejection of its input, with the reason); nothing
/// when its primary has no fallback left.
pub(crate) fn after_death(
    cfg: &Config,
    state: &dyn History,
    dead: &TaskInfo,
    cost: f64,
) -> Result<Vec<Record>> {
    let primary = primary_of(state, dead)?;
    let Some(list) = cfg.agents.get(&primary.agent).map(|a| &a.fallback) else {
        return Ok(Vec::new());
    };
    let start = if primary.id == dead.id {
        0
    } else {
        match list
            .iter()
            .position(|f| f.name() == dead.agent && *f != Fallback::Human)
        {
            Some(at) => at + 1,
            None => return Ok(Vec::new()), // the config changed since: no longer its list
        }
    };
    let delegator = match &primary.parent {
        Some(p) => state.task(p)?.map(|t| t.into_owned()),
        None => None,
    };
    let mut out = Vec::new();
    for next in &list[start..] {
        let agent = match next {
            Fallback::Human => {
                out.push(Record::Escalated {
                    task: dead.id.clone(),
                });
                return Ok(out);
            }
            Fallback::Agent(agent) => agent,
        };
        let refused = match cfg.agents.get(agent) {
            None => Some(format!("`{agent}` is no longer an agent")),
            Some(_) => {
                crate::route::narrowing_allowed(cfg, delegator.as_ref(), agent, &dead.writes).err()
            }
        };
        if let Some(why) = refused {
            out.push(Record::Rejected {
                path: dead.input.clone(),
                hash: Some(dead.input_hash.clone()),
                error: format!(
                    "the fallback `{agent}` of dead task {} is skipped: {why}",
                    dead.id
                ),
            });
            continue;
        }
        let id = fallback_id(dead, agent);
        if state.task(&id)?.is_some_and(|t| !t.status.is_final()) {
            return Ok(out); // under way already (the dead task was retried meanwhile)
        }
        let budget = crate::budget::left(state, dead)?.map(|left| (left - cost).max(0.0));
        out.push(Record::Queued {
            task: id,
            agent: agent.clone(),
            input: dead.input.clone(),
            input_hash: dead.input_hash.clone(),
            parent: Some(dead.id.clone()),
            depth: dead.depth,
            reason: Reason::Fallback,
            refs: dead.refs.clone(),
            writes: dead.writes.clone(),
            deadline: dead.deadline.clone(),
            deadline_asked: None,
            budget,
            budget_asked: None,
        });
        return Ok(out);
    }
    Ok(out)
}

/// The id of the fallback task `agent` takes over `dead` with.
fn fallback_id(dead: &TaskInfo, agent: &str) -> TaskId {
    TaskId::derive(
        agent,
        &dead.input,
        &dead.input_hash,
        Some(&format!("fallback:{}", dead.id)),
    )
}

/// The dead tasks whose input `task` took over as a fallback, nearest first: its
/// parents while each link is a fallback. Empty for a task that is no fallback.
fn taken_over(state: &dyn History, task: &TaskInfo) -> Result<Vec<TaskInfo>> {
    let mut out: Vec<TaskInfo> = Vec::new();
    let mut current = task;
    while current.reason == Reason::Fallback && out.len() < MAX_NESTING {
        let parent = match &current.parent {
            Some(p) => state.task(p)?.map(|t| t.into_owned()),
            None => None,
        };
        let Some(parent) = parent else { break };
        out.push(parent);
        current = out.last().expect("just pushed");
    }
    Ok(out)
}

/// The task that began the run of fallbacks `task` belongs to (itself if it is no
/// fallback).
fn primary_of(state: &dyn History, task: &TaskInfo) -> Result<TaskInfo> {
    Ok(taken_over(state, task)?
        .pop()
        .unwrap_or_else(|| task.clone()))
}

/// For a fallback's `task.json`: the dead tasks whose input it took over, nearest first,
/// each with its agent, error and attempts. Empty for a task that is no fallback.
pub(crate) fn failures_before(state: &dyn History, task: &TaskInfo) -> Result<Vec<Value>> {
    Ok(taken_over(state, task)?
        .into_iter()
        .map(|t| {
            json!({
                "task": t.id,
                "agent": t.agent,
                "status": t.status,
                "error": t.error,
                "attempts": t.attempt,
            })
        })
        .collect())
}

/// The task whose result stands for `task`'s: the last of the fallbacks that took its
/// input over once it died (itself when it is not dead, or has none). A join counts
/// it in the dead task's place.
pub(crate) fn standing_for(state: &dyn History, task: &TaskInfo) -> Result<TaskInfo> {
    let mut current = task.clone();
    for _ in 0..MAX_NESTING {
        if current.status != crate::journal::TaskStatus::Dead {
            break;
        }
        let next = state
            .children(&current.id)?
            .into_iter()
            .rfind(|c| c.reason == Reason::Fallback);
        match next {
            Some(next) => current = next,
            None => break,
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::journal::{Status, TaskStatus};
    use crate::testing::JournalBuilder;

    fn cfg(primary_extra: &str) -> Config {
        Config::parse(
            &format!(
                "[agents.writer]\non = [\"briefs/*.md\"]\nrun = \"true\"\nwrites = [\"drafts\"]\n\
                 fallback = [\"backup\", \"spare\", \"human\"]\n{primary_extra}\n\
                 [agents.backup]\nrun = \"true\"\nwrites = [\"drafts\"]\nfallback = [\"spare\"]\n\
                 [agents.spare]\nrun = \"true\"\nwrites = [\"reviews\"]\n"
            ),
            Path::new("/"),
        )
        .unwrap()
    }

    /// Ends `task` dead and returns what follows, its last attempt having cost `cost`.
    fn die(j: &mut JournalBuilder, cfg: &Config, task: &str, cost: f64) -> Vec<Record> {
        j.finish(task, Status::Dead, &[], &[]);
        let dead = j.state.tasks[&TaskId::from(task)].clone();
        after_death(cfg, &j.state, &dead, cost).unwrap()
    }

    /// Applies `records` and returns the task the one `task.queued` among them queued.
    fn queued(j: &mut JournalBuilder, records: Vec<Record>) -> TaskInfo {
        let id = records
            .iter()
            .find_map(|r| match r {
                Record::Queued { task, .. } => Some(task.clone()),
                _ => None,
            })
            .expect("a fallback queued");
        j.push_all(records);
        j.state.tasks[&id].clone()
    }

    #[test]
    fn the_primarys_list_is_walked_to_a_person() {
        let cfg = cfg("");
        let mut j = JournalBuilder::new();
        j.queue("w", "writer", "briefs/a.md", None);
        let first = die(&mut j, &cfg, "w", 0.0);
        let b = queued(&mut j, first);
        assert_eq!(
            (
                b.agent.as_str(),
                b.reason,
                b.parent.as_ref().unwrap().as_str()
            ),
            ("backup", Reason::Fallback, "w")
        );
        assert_eq!(b.input.as_str(), "briefs/a.md");
        // backup's own list is not what follows: the writer's is, to its end.
        let second = die(&mut j, &cfg, b.id.as_str(), 0.0);
        let s = queued(&mut j, second);
        assert_eq!(s.agent, "spare");
        let third = die(&mut j, &cfg, s.id.as_str(), 0.0);
        assert_eq!(third, [Record::Escalated { task: s.id.clone() }]);
        j.push_all(third);
        assert_eq!(j.state.tasks[&s.id].status, TaskStatus::Escalated);
        // Each fallback's task.json tells what failed before it, nearest first.
        let before = failures_before(&j.state, &j.state.tasks[&s.id]).unwrap();
        let agents: Vec<&str> = before
            .iter()
            .map(|f| f["agent"].as_str().unwrap())
            .collect();
        assert_eq!(agents, ["backup", "writer"]);
        // A join counts the last of them in the first one's place.
        assert_eq!(
            standing_for(&j.state, &j.state.tasks[&TaskId::from("w")])
                .unwrap()
                .id,
            s.id
        );
    }

    #[test]
    fn an_agent_without_fallback_leaves_its_dead_task_dead() {
        let cfg = cfg("");
        let mut j = JournalBuilder::new();
        j.queue("s", "spare", "briefs/a.md", None);
        assert!(die(&mut j, &cfg, "s", 0.0).is_empty());
    }

    #[test]
    fn a_fallback_that_may_not_write_the_narrowed_scope_is_skipped_and_said_why() {
        let cfg = cfg("");
        let mut j = JournalBuilder::new();
        j.queue("w", "writer", "briefs/a.md", None);
        j.push(Record::Queued {
            task: TaskId::from("b"),
            agent: "backup".into(),
            input: crate::workspace::RelPath::new("briefs/a.md").unwrap(),
            input_hash: "h-briefs/a.md".into(),
            parent: Some(TaskId::from("w")),
            depth: 0,
            reason: Reason::Fallback,
            refs: Vec::new(),
            writes: vec!["drafts/ch1".into()],
            deadline: None,
            deadline_asked: None,
            budget: Some(10.0),
            budget_asked: None,
        });
        // spare writes only reviews/: it cannot take over work narrowed to drafts/ch1.
        let records = die(&mut j, &cfg, "b", 4.0);
        assert!(
            matches!(&records[0], Record::Rejected { error, .. }
                if error.contains("the fallback `spare`") && error.contains("outside its own writes")),
            "{records:?}"
        );
        assert_eq!(
            records[1],
            Record::Escalated {
                task: TaskId::from("b")
            }
        );
    }

    #[test]
    fn a_fallback_inherits_the_narrowed_writes_deadline_and_what_is_left_to_spend() {
        let cfg = cfg("");
        let mut j = JournalBuilder::new();
        j.push(Record::Queued {
            task: TaskId::from("w"),
            agent: "writer".into(),
            input: crate::workspace::RelPath::new("briefs/a.md").unwrap(),
            input_hash: "h".into(),
            parent: None,
            depth: 2,
            reason: Reason::Glob,
            refs: Vec::new(),
            writes: vec!["drafts/ch1".into()],
            deadline: Some("2030-01-01T00:00:00Z".into()),
            deadline_asked: None,
            budget: Some(10.0),
            budget_asked: None,
        });
        let records = die(&mut j, &cfg, "w", 4.0);
        let b = queued(&mut j, records);
        assert_eq!(b.writes, ["drafts/ch1"]);
        assert_eq!(b.deadline.as_deref(), Some("2030-01-01T00:00:00Z"));
        assert_eq!(b.budget, Some(6.0), "the dead attempt's cost is spent");
        assert_eq!(
            b.depth, 2,
            "a fallback is no deeper than the task it replaces"
        );
    }

    #[test]
    fn a_fallback_under_way_is_not_queued_again() {
        let cfg = cfg("");
        let mut j = JournalBuilder::new();
        j.queue("w", "writer", "briefs/a.md", None);
        let records = die(&mut j, &cfg, "w", 0.0);
        let b = queued(&mut j, records);
        j.start(b.id.as_str(), 1);
        // The dead task was retried and died again while its fallback runs.
        j.push(Record::requeued(
            &j.state.tasks[&TaskId::from("w")].clone(),
            Reason::Retry,
        ));
        let again = die(&mut j, &cfg, "w", 0.0);
        assert!(again.is_empty(), "{again:?}");
    }
}
