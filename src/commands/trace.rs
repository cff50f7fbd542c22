//! `baton trace PATH|TASK [--json]`: the delegation tree around an artifact or a task,
//! from the journal. Each node is a task: its agent, status, duration, what it read
//! (input and refs) and what it wrote; briefs refused on the way hang under the task
//! that wrote them.

use anyhow::Result;
use serde_json::{Value, json};

use super::Style;
use crate::journal::{Author, History};
use crate::report::trace::trees;
use crate::store::Store;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, target: &str, as_json: bool) -> Result<u8> {
    let store = Store::open(ws)?;
    let (focus, roots, trees) = trees(ws, &store, target)?;
    if as_json {
        let doc = json!({ "target": target, "focus": focus, "trees": trees });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    let st = Style::stdout();
    for (i, tree) in trees.iter().enumerate() {
        if i > 0 {
            println!();
        }
        if let Some(root) = store.task(&roots[i])? {
            let by = store
                .artifact(&root.input)?
                .map_or(Author::External, |a| a.attribution.by);
            let by = match by {
                Author::Agent(name) => format!("agent {name}"),
                other => other.to_string(),
            };
            println!(
                "{}  {}",
                st.bold(root.input.as_str()),
                st.dim(&format!("by {by}"))
            );
        }
        render(tree, None, st);
    }
    Ok(0)
}

/// Prints a node and its subtree, indented with box-drawing branches. `at` is the
/// indentation and whether the node is its parent's last; `None` for a root.
fn render(node: &Value, at: Option<(&str, bool)>, st: Style) {
    let s = |key: &str| node[key].as_str().unwrap_or("").to_string();
    let list = |key: &str| -> Vec<String> {
        node[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let status = s("status");
    let painted = match status.as_str() {
        "done" => st.green(&status),
        "dead" | "escalated" => st.red(&status),
        "held" | "failed" => st.yellow(&status),
        _ => st.dim(&status),
    };
    let duration = node["duration_ms"]
        .as_u64()
        .map_or(String::new(), |ms| format!("  {}", human_ms(ms)));
    let cost = match (node["cost"].as_f64(), node["budget_left"].as_f64()) {
        (Some(c), Some(left)) if node["budget"].is_number() => {
            format!("  cost {c}, budget left {left}")
        }
        (Some(c), _) if c > 0.0 => format!("  cost {c}"),
        _ => String::new(),
    };
    let how = match node["reason"].as_str() {
        Some("delegate") => " (delegated)",
        Some("join") => " (join)",
        Some("fallback") => " (fallback)",
        _ => "",
    };
    let branch = match at {
        None => String::new(),
        Some((prefix, true)) => format!("{prefix}└─ "),
        Some((prefix, false)) => format!("{prefix}├─ "),
    };
    let mark = if node["focus"].as_bool() == Some(true) {
        st.bold("  ◀")
    } else {
        String::new()
    };
    let writes = list("writes");
    println!(
        "{branch}{}{how}  {}  {painted}{duration}{cost}  reads {}{}{mark}",
        st.bold(&s("agent")),
        st.dim(&s("task")),
        list("reads").join(", "),
        if writes.is_empty() {
            String::new()
        } else {
            format!(" → writes {}", writes.join(", "))
        },
    );
    let child_prefix = match at {
        None => String::new(),
        Some((prefix, true)) => format!("{prefix}   "),
        Some((prefix, false)) => format!("{prefix}│  "),
    };
    if let Some(error) = node["error"].as_str() {
        println!("{child_prefix}   {}", st.red(error));
    }
    let refused = node["refused"].as_array().cloned().unwrap_or_default();
    let children = node["children"].as_array().cloned().unwrap_or_default();
    let total = refused.len() + children.len();
    for (i, r) in refused.iter().enumerate() {
        let branch = if i + 1 == total { "└─" } else { "├─" };
        println!(
            "{child_prefix}{branch} {} {}: {}",
            st.red("refused"),
            r["path"].as_str().unwrap_or(""),
            r["error"].as_str().unwrap_or("")
        );
    }
    for (i, c) in children.iter().enumerate() {
        render(c, Some((&child_prefix, refused.len() + i + 1 == total)), st);
    }
}

fn human_ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1_000.0)
    }
}
