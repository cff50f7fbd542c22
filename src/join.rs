//! PURE fan-in (DESIGN §7, "Report back"): when a delegating task's join is due, and
//! what its agent is told about the children. State in, records and JSON out.
//!
//! A task *delegated* the briefs among its outputs whose `reply_to` names it. Each such
//! brief's tasks are its *children*; a child is *settled* when it and every task that
//! descends from it (the tasks its outputs triggered in turn, and its own join) have
//! reached a final state. When all of a done task's children are settled, its agent
//! runs once more on the same input: the join, with `BATON_JOIN=1`.
//!
//! The join's id is derived from the delegating task's, so queuing it is idempotent: it
//! runs once however many children finish together, and after any crash.

use anyhow::Result;
use serde_json::{Value, json};

use crate::journal::{History, Reason, Record, TaskId, TaskInfo, TaskStatus};

/// Bounds recursion over a corrupt journal whose parent links loop.
const MAX_NESTING: usize = 10_000;

/// The id of the join of `task`.
pub(crate) fn join_id(task: &TaskInfo) -> TaskId {
    TaskId::derive(
        &task.agent,
        &task.input,
        &task.input_hash,
        Some(&format!("join:{}", task.id)),
    )
}

/// The joins due now that task `changed` moved: its own, and its ancestors'. A join
/// counts in the chain's depth: one join may go past `max_depth` (it hears that its
/// delegation was refused), the next is not queued but rejected, so an agent that
/// delegates again at every join (ignoring `BATON_JOIN`) cannot run forever.
pub(crate) fn due(state: &dyn History, changed: &TaskId, max_depth: u32) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for t in state.ancestors(Some(changed))? {
        out.extend(due_for(state, &t, max_depth)?);
    }
    Ok(out)
}

/// The joins due among `candidates` (at start: the done tasks whose join is not queued,
/// which a crash may have kept from being queued).
pub(crate) fn due_among(
    state: &dyn History,
    candidates: &[TaskInfo],
    max_depth: u32,
) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for t in candidates {
        out.extend(due_for(state, t, max_depth)?);
    }
    Ok(out)
}

/// The join of `task`, if it is due and not queued yet.
fn due_for(state: &dyn History, task: &TaskInfo, max_depth: u32) -> Result<Option<Record>> {
    if !awaits_join(task) || state.contains_task(&join_id(task))? {
        return Ok(None);
    }
    for c in children(state, task)? {
        if !settled(state, &c, 0)? {
            return Ok(None);
        }
    }
    // One join past the limit still runs, to hear that its delegation was refused;
    // the next would only repeat it.
    if task.depth > max_depth {
        let error = format!(
            "the join of task {} is not queued: it would be {} deep, and past max_depth = \
             {max_depth} only one join runs, to hear its delegation was refused",
            task.id,
            task.depth + 1
        );
        if state.rejection(&task.input, &task.input_hash)?.as_deref() == Some(error.as_str()) {
            return Ok(None); // said once already
        }
        return Ok(Some(Record::Rejected {
            path: task.input.clone(),
            hash: Some(task.input_hash.clone()),
            error,
        }));
    }
    Ok(Some(Record::Queued {
        task: join_id(task),
        agent: task.agent.clone(),
        input: task.input.clone(),
        input_hash: task.input_hash.clone(),
        parent: Some(task.id.clone()),
        depth: task.depth + 1,
        reason: Reason::Join,
        refs: task.refs.clone(),
        writes: task.writes.clone(),
        deadline: task.deadline.clone(),
        deadline_asked: None,
        budget: task.budget,
        budget_asked: None,
    }))
}

/// For a task waiting for its join: how many of its delegated briefs are settled, of
/// how many. `None` when it awaits no join (or its join is queued already).
pub(crate) fn waiting(state: &dyn History, task: &TaskInfo) -> Result<Option<(usize, usize)>> {
    if !awaits_join(task) || state.contains_task(&join_id(task))? {
        return Ok(None);
    }
    let children = children(state, task)?;
    let mut settled_briefs = 0;
    for brief in &task.delegated {
        let mut all = true;
        for c in children.iter().filter(|c| &c.input == brief) {
            all &= settled(state, c, 0)?;
        }
        settled_briefs += usize::from(all);
    }
    Ok(Some((settled_briefs, task.delegated.len())))
}

/// A done task whose delegated work is settled but whose join is not queued yet (its
/// agent is about to run again).
pub(crate) fn awaits_unqueued_join(state: &dyn History, task: &TaskInfo) -> Result<bool> {
    Ok(awaits_join(task) && !state.contains_task(&join_id(task))?)
}

/// A done task that delegated: it gets a join.
fn awaits_join(task: &TaskInfo) -> bool {
    task.status == TaskStatus::Done && !task.delegated.is_empty()
}

/// The tasks started on the briefs `task` delegated.
fn children(state: &dyn History, task: &TaskInfo) -> Result<Vec<TaskInfo>> {
    let mut children = state.children(&task.id)?;
    children.retain(|c| c.reason != Reason::Join && task.delegated.contains(&c.input));
    Ok(children)
}

/// Whether `task` and everything descending from it reached a final state, its own
/// join included.
fn settled(state: &dyn History, task: &TaskInfo, nesting: usize) -> Result<bool> {
    if nesting > MAX_NESTING || !task.status.is_final() {
        return Ok(false);
    }
    if awaits_unqueued_join(state, task)? {
        return Ok(false);
    }
    for c in state.children(&task.id)? {
        if !settled(state, &c, nesting + 1)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What a join is told about the children of the task it joins, for task.json: per
/// delegated brief, its agent, task, status, outputs and `result.toml`; a brief that
/// was refused appears with the reason.
pub(crate) fn report(state: &dyn History, join: &TaskInfo) -> Result<Vec<Value>> {
    let parent = match &join.parent {
        Some(p) => state.task(p)?,
        None => None,
    };
    let Some(parent) = parent else {
        return Ok(Vec::new());
    };
    let children = children(state, &parent)?;
    let mut out = Vec::new();
    for brief in &parent.delegated {
        let tasks: Vec<&TaskInfo> = children.iter().filter(|c| &c.input == brief).collect();
        if tasks.is_empty() {
            let hash = parent
                .outputs
                .iter()
                .find(|o| &o.path == brief)
                .map_or("", |o| o.hash.as_str());
            let error = state.rejection(brief, hash)?;
            out.push(json!({
                "brief": brief,
                "agent": null,
                "task": null,
                "status": if error.is_some() { "rejected" } else { "unrouted" },
                "error": error,
                "outputs": [],
                "all_outputs": [],
                "result": null,
                "summary": null,
            }));
            continue;
        }
        for first in tasks {
            // A dead child's fallback stands in its place.
            let child = crate::fallback::standing_for(state, first)?;
            let mut all_outputs = Vec::new();
            subtree_outputs(state, &child, 0, &mut all_outputs)?;
            out.push(json!({
                "brief": brief,
                "agent": child.agent,
                "task": child.id,
                "status": child.status,
                "error": child.error,
                "outputs": child.outputs.iter().map(|o| &o.path).collect::<Vec<_>>(),
                "all_outputs": all_outputs,
                "result": child.result,
                "summary": child.result.as_ref().and_then(|r| r.get("summary")),
                "fallback_of": (child.id != first.id).then_some(&first.id),
            }));
        }
    }
    Ok(out)
}

/// The output paths of `task` and of every task descending from it, in journal order.
fn subtree_outputs(
    state: &dyn History,
    task: &TaskInfo,
    nesting: usize,
    out: &mut Vec<String>,
) -> Result<()> {
    if nesting > MAX_NESTING {
        return Ok(());
    }
    for o in &task.outputs {
        if !out.iter().any(|p| p == o.path.as_str()) {
            out.push(o.path.to_string());
        }
    }
    for child in state.children(&task.id)? {
        subtree_outputs(state, &child, nesting + 1, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Status;
    use crate::testing::JournalBuilder;
    use crate::workspace::RelPath;

    fn id(task: &str) -> TaskId {
        TaskId::from(task)
    }

    /// Every join due: as the daemon finds them at start.
    fn all_due(state: &crate::journal::State) -> Vec<Record> {
        let all: Vec<TaskInfo> = state
            .order
            .iter()
            .map(|id| state.tasks[id].clone())
            .collect();
        due_among(state, &all, 8).unwrap()
    }

    fn joins(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Queued {
                    parent,
                    reason: Reason::Join,
                    ..
                } => parent.as_ref().map(|p| p.to_string()),
                _ => None,
            })
            .collect()
    }

    /// A manager that delegated two briefs, with their workers queued.
    fn manager() -> JournalBuilder {
        let mut j = JournalBuilder::new();
        j.queue("m", "manager", "briefs/req.md", None);
        j.finish(
            "m",
            Status::Done,
            &["briefs/a.md", "briefs/b.md", "drafts/plan.md"],
            &["briefs/a.md", "briefs/b.md"],
        );
        j.queue("wa", "worker", "briefs/a.md", Some("m"));
        j.queue("wb", "worker", "briefs/b.md", Some("m"));
        j
    }

    #[test]
    fn a_join_is_due_once_every_child_is_final() {
        let mut j = manager();
        assert!(
            due(&j.state, &id("m"), 8).unwrap().is_empty(),
            "children still queued"
        );
        j.finish("wa", Status::Done, &["drafts/a.md"], &[]);
        assert!(
            due(&j.state, &id("wa"), 8).unwrap().is_empty(),
            "one child left"
        );
        j.finish("wb", Status::Dead, &[], &[]);
        let records = due(&j.state, &id("wb"), 8).unwrap();
        assert_eq!(joins(&records), ["m"]);
        j.push_all(records);
        assert!(
            due(&j.state, &id("wa"), 8).unwrap().is_empty(),
            "queued once"
        );
        assert!(all_due(&j.state).is_empty());
        let join = &j.state.tasks[&join_id(&j.state.tasks["m"])];
        assert_eq!(
            (join.agent.as_str(), join.reason),
            ("manager", Reason::Join)
        );
    }

    #[test]
    fn tasks_the_children_triggered_must_settle_too() {
        let mut j = manager();
        j.finish("wa", Status::Done, &["drafts/a.md"], &[]);
        j.finish("wb", Status::Done, &["drafts/b.md"], &[]);
        // wb's output went on to a reviewer.
        j.push(Record::Queued {
            task: id("r"),
            agent: "reviewer".into(),
            input: RelPath::new("drafts/b.md").unwrap(),
            input_hash: "h".into(),
            parent: Some(id("wb")),
            depth: 2,
            reason: Reason::Glob,
            refs: Vec::new(),
            writes: Vec::new(),
            deadline: None,
            deadline_asked: None,
            budget: None,
            budget_asked: None,
        });
        assert!(all_due(&j.state).is_empty(), "the reviewer is queued");
        j.finish("r", Status::Done, &[], &[]);
        assert_eq!(joins(&all_due(&j.state)), ["m"]);
    }

    #[test]
    fn a_child_that_delegated_settles_only_after_its_own_join() {
        let mut j = manager();
        j.finish("wa", Status::Done, &["briefs/sub.md"], &["briefs/sub.md"]);
        j.finish("wb", Status::Done, &[], &[]);
        j.queue("s", "helper", "briefs/sub.md", Some("wa"));
        j.finish("s", Status::Done, &[], &[]);
        // wa's join is due; m's is not, until wa's join has run.
        let records = due(&j.state, &id("s"), 8).unwrap();
        assert_eq!(joins(&records), ["wa"]);
        j.push_all(records);
        let wa_join = join_id(&j.state.tasks["wa"]);
        assert!(due(&j.state, &wa_join, 8).unwrap().is_empty());
        j.finish(wa_join.as_str(), Status::Done, &[], &[]);
        assert_eq!(joins(&due(&j.state, &wa_join, 8).unwrap()), ["m"]);
    }

    #[test]
    fn a_refused_brief_is_settled_and_reported_with_its_reason() {
        let mut j = JournalBuilder::new();
        j.queue("m", "manager", "briefs/req.md", None);
        j.finish("m", Status::Done, &["briefs/x.md"], &["briefs/x.md"]);
        j.push(Record::Rejected {
            path: RelPath::new("briefs/x.md").unwrap(),
            hash: Some("h-briefs/x.md".into()),
            error: "not sent to `legal`: …".into(),
        });
        let records = due(&j.state, &id("m"), 8).unwrap();
        assert_eq!(joins(&records), ["m"]);
        j.push_all(records);
        let join = j.state.tasks[&join_id(&j.state.tasks["m"])].clone();
        let report = report(&j.state, &join).unwrap();
        assert_eq!(report.len(), 1);
        assert_eq!(report[0]["status"], "rejected");
        assert_eq!(report[0]["error"], "not sent to `legal`: …");
    }

    #[test]
    fn the_report_lists_each_child_with_its_outputs() {
        let mut j = manager();
        j.finish("wa", Status::Done, &["drafts/a.md"], &[]);
        j.finish("wb", Status::Done, &["drafts/b.md"], &[]);
        let records = due(&j.state, &id("wb"), 8).unwrap();
        j.push_all(records);
        let join = j.state.tasks[&join_id(&j.state.tasks["m"])].clone();
        let report = report(&j.state, &join).unwrap();
        let got: Vec<(String, String, String)> = report
            .iter()
            .map(|c| {
                (
                    c["brief"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                    c["outputs"][0].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("briefs/a.md".into(), "done".into(), "drafts/a.md".into()),
                ("briefs/b.md".into(), "done".into(), "drafts/b.md".into())
            ]
        );
    }
}
