//! The delegation tree around an artifact or a task, from the journal, as JSON: each node
//! a task with its agent, status, duration, reads and writes, and the briefs refused on
//! the way under the task that wrote them.

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use crate::error::{Code, refuse};
use crate::journal::{FindTaskError, History, TaskId, TaskInfo};
use crate::store::Store;
use crate::workspace::{RelPath, Workspace};

/// Bounds recursion over a corrupt journal whose parent links loop.
const MAX_NESTING: usize = 1_000;

/// What `baton trace --json` prints, as a value (for `baton mcp`).
pub(crate) fn doc(ws: &Workspace, target: &str) -> Result<Value> {
    let store = Store::open(ws)?;
    let (focus, _, trees) = trees(ws, &store, target)?;
    Ok(json!({ "target": target, "focus": focus, "trees": trees }))
}

/// The tasks the target names, the roots of their delegation trees, and the trees.
pub(crate) fn trees(
    ws: &Workspace,
    store: &Store,
    target: &str,
) -> Result<(Vec<TaskId>, Vec<TaskId>, Vec<Value>)> {
    let (focus, roots) = find_roots(ws, store, target)?;
    let mut trees: Vec<Value> = Vec::with_capacity(roots.len());
    for root in &roots {
        trees.push(node(store, root, &focus, 0)?);
    }
    Ok((focus, roots, trees))
}

/// The tasks the target names (`focus`) and the roots of their delegation trees.
fn find_roots(ws: &Workspace, store: &Store, target: &str) -> Result<(Vec<TaskId>, Vec<TaskId>)> {
    let as_path = ws.rel_from_user(Path::new(target)).ok();
    let mut focus: Vec<TaskId> = Vec::new();
    let mut known_path = false;
    if let Some(path) = &as_path {
        let artifact = store.artifact(path)?;
        let touching = store.tasks_touching(path)?;
        known_path = artifact.is_some() || !touching.is_empty();
        focus.extend(artifact.and_then(|a| a.attribution.task));
        focus.extend(touching.into_iter().map(|t| t.id));
    }
    if !known_path {
        focus = vec![
            store
                .find_task(target)
                .map_err(|e| match e {
                    FindTaskError::NotFound(_) => refuse(
                        Code::NotFound,
                        format!(
                            "`{target}` is neither a path the journal knows nor a task id (see `baton log`)"
                        ),
                    ),
                    ambiguous => ambiguous.into(),
                })?
                .id,
        ];
    }
    let mut roots: Vec<TaskId> = Vec::new();
    for id in &focus {
        if let Some(root) = store.ancestors(Some(id))?.pop() {
            if !roots.contains(&root.id) {
                roots.push(root.id);
            }
        }
    }
    if roots.is_empty() {
        return Err(refuse(
            Code::NotFound,
            format!("{target} was written by no task and read by none yet"),
        ));
    }
    Ok((focus, roots))
}

/// One task and, beneath it, the tasks it led to, as JSON.
fn node(store: &Store, id: &TaskId, focus: &[TaskId], nesting: usize) -> Result<Value> {
    let Some(t) = store.task(id)? else {
        return Ok(json!({ "task": id }));
    };
    let mut children: Vec<Value> = Vec::new();
    if nesting < MAX_NESTING {
        for c in store.children(id)? {
            children.push(node(store, &c.id, focus, nesting + 1)?);
        }
    }
    let mut refused: Vec<Value> = Vec::new();
    for o in &t.outputs {
        if let Some(e) = store.rejection(&o.path, &o.hash)? {
            refused.push(json!({ "path": o.path, "error": e }));
        }
    }
    Ok(json!({
        "task": t.id,
        "agent": t.agent,
        "status": t.status,
        "reason": t.reason,
        "duration_ms": t.duration_ms,
        "cost": t.cost,
        "budget": t.budget,
        "budget_left": crate::budget::left(store, &t)?,
        "reads": reads(&t),
        "writes": t.outputs.iter().map(|o| &o.path).collect::<Vec<_>>(),
        "error": t.error,
        "focus": focus.contains(&t.id),
        "refused": refused,
        "children": children,
    }))
}

fn reads(t: &TaskInfo) -> Vec<&RelPath> {
    std::iter::once(&t.input)
        .chain(t.refs.iter().filter(|r| **r != t.input))
        .collect()
}
