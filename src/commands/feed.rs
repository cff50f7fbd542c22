//! The activity feed: one line per journal record that a person wants to see, for
//! `baton log` and `baton demo`.

use super::Style;
use crate::journal::{Author, Decision, Entry, Reason, Record, Status, TaskId};

/// The agent of a task, as the feed names it.
pub(crate) type AgentOf<'a> = dyn Fn(&TaskId) -> Option<String> + 'a;

/// One line of the human feed for an entry, or none for bookkeeping records.
pub(crate) fn feed_line(agents: &AgentOf, entry: &Entry, st: Style) -> Option<String> {
    let time = entry.ts.get(11..23).unwrap_or(&entry.ts);
    let agent_of = |task: &TaskId| agents(task).unwrap_or_else(|| "?".to_string());
    let (who, what) = match &entry.record {
        Record::Artifact { path, by, .. } => {
            let verb = match by {
                Author::Human => "dropped",
                Author::External => "appeared",
                Author::Agent(_) => "wrote",
            };
            (by.to_string(), format!("{}  {}", st.cyan(verb), path))
        }
        Record::Queued {
            task,
            agent,
            input,
            reason,
            parent,
            ..
        } => {
            let from = parent
                .as_ref()
                .map_or(String::new(), |p| format!(" (from {p})"));
            let by = |p: &Option<TaskId>| p.as_ref().map_or("?".into(), agent_of);
            let what = match reason {
                Reason::Delegate => format!(
                    "{}  {task} on {input}, delegated by {}{from}",
                    st.cyan("delegated"),
                    by(parent)
                ),
                Reason::Fallback => format!(
                    "{}  {task}: {input} goes to {agent}, the fallback of {} (dead: {})",
                    st.yellow("fallback"),
                    by(parent),
                    parent.as_ref().map_or("?", TaskId::as_str)
                ),
                Reason::Join => format!(
                    "{}  {task}: {agent} runs again on {input}, the work {} delegated is settled",
                    st.cyan("join"),
                    parent.as_ref().map_or("?", TaskId::as_str)
                ),
                _ => format!(
                    "{}  {task} on {input}, by {}{from}",
                    st.dim("queued"),
                    serde_plain(reason)
                ),
            };
            (agent.clone(), what)
        }
        Record::Started {
            task, attempt, pid, ..
        } => (
            agent_of(task),
            format!(
                "{}  {task} attempt {attempt} (pid {pid})",
                st.dim("started")
            ),
        ),
        Record::Committing { .. } => return None,
        Record::Finished {
            task,
            status,
            duration_ms,
            outputs,
            error,
            ..
        } => {
            let outs: Vec<&str> = outputs.iter().map(|o| o.path.as_str()).collect();
            let detail = match status {
                Status::Done if outs.is_empty() => {
                    format!("{task} in {duration_ms} ms, no outputs")
                }
                Status::Done => format!("{task} in {duration_ms} ms → {}", outs.join(", ")),
                Status::Held => format!(
                    "{task} → {} waits for `baton approve {task}`",
                    outs.join(", ")
                ),
                Status::Failed | Status::Dead => {
                    format!("{task}: {}", error.as_deref().unwrap_or("failed"))
                }
            };
            let label = match status {
                Status::Done => st.green("done"),
                Status::Held => st.yellow("held"),
                Status::Failed => st.yellow("failed"),
                Status::Dead => st.red("dead"),
            };
            (agent_of(task), format!("{label}  {detail}"))
        }
        Record::Approval {
            task,
            decision,
            by,
            note,
        } => {
            let verb = match decision {
                Decision::Approved => st.green("approved"),
                Decision::Rejected => st.red("rejected"),
            };
            let note = note.as_ref().map_or(String::new(), |n| format!(": {n}"));
            (by.to_string(), format!("{verb}  {task}{note}"))
        }
        Record::Cancelled { task, by } => {
            (by.to_string(), format!("{}  {task}", st.red("cancelled")))
        }
        Record::Escalated { task } => (
            agent_of(task),
            format!(
                "{}  {task} waits for a person: `baton resolve {task} --file DEST=SRC`, \
                 `baton retry {task}` or `baton cancel {task}`",
                st.red("escalated")
            ),
        ),
        Record::Resolved { task, by, outputs } => {
            let outs: Vec<&str> = outputs.iter().map(|o| o.path.as_str()).collect();
            (
                by.to_string(),
                format!("{}  {task} → {}", st.green("resolved"), outs.join(", ")),
            )
        }
        Record::ConfigLoaded { hash } => (
            "baton".to_string(),
            format!(
                "{}  baton.toml ({})",
                st.dim("config"),
                &hash[..12.min(hash.len())]
            ),
        ),
        Record::Rejected { path, error, .. } => (
            "baton".to_string(),
            format!("{}  {path}: {error}", st.red("rejected")),
        ),
    };
    Some(format!("{}  {:<12} {what}", st.dim(time), who))
}

fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
