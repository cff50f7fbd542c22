//! Budgets (issue 15): a number in the unit agents report as `cost` in `result.toml`.
//! A brief may carry one; each attempt's reported cost is charged to its task and so to
//! every task above it in the delegation chain. What a task has left is the least of
//! what each budgeted task on its chain (itself included) has left: its budget less the
//! cost of everything beneath it.

use anyhow::Result;

use crate::journal::{History, TaskInfo};

/// Bounds recursion over a corrupt journal whose parent links loop.
const MAX_NESTING: usize = 1_000;

/// What `task`'s chain has left to spend, or `None` if no task on it has a budget.
pub(crate) fn left(state: &dyn History, task: &TaskInfo) -> Result<Option<f64>> {
    // A task under a budgeted chain has a budget itself (it inherits what is left), so
    // an unbudgeted one costs no walk: most tasks, at every start.
    if task.budget.is_none() {
        return Ok(None);
    }
    let mut least: Option<f64> = None;
    let chain = std::iter::once(task.clone()).chain(state.ancestors(task.parent.as_ref())?);
    for t in chain {
        if let Some(budget) = t.budget {
            let remaining = budget - spent_under(state, &t, 0)?;
            least = Some(least.map_or(remaining, |l| l.min(remaining)));
        }
    }
    Ok(least)
}

/// The cost of `task` and of every task beneath it.
pub(crate) fn spent_under(state: &dyn History, task: &TaskInfo, nesting: usize) -> Result<f64> {
    let own = state.task(&task.id)?.map_or(task.cost, |t| t.cost);
    if nesting >= MAX_NESTING {
        return Ok(own);
    }
    let mut total = own;
    for child in state.children(&task.id)? {
        total += spent_under(state, &child, nesting + 1)?;
    }
    Ok(total)
}

/// The `cost` an attempt's `result.toml` reported, if it reported a number.
pub(crate) fn cost_in(result: &serde_json::Value) -> Option<f64> {
    result
        .get("cost")
        .and_then(serde_json::Value::as_f64)
        .filter(|c| *c >= 0.0)
}

/// A budget as asked: a number, or a string holding one, not negative.
pub(crate) fn parse(value: &toml::Value) -> Result<f64, String> {
    let n = match value {
        toml::Value::Integer(n) => Some(*n as f64),
        toml::Value::Float(f) => Some(*f),
        toml::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("expected a number not below 0, like 10 or 2.5, not {value}"))
}
