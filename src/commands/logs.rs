//! `baton logs TASK|PATH [--attempt N] [--tail N] [--follow]`: an agent run's stdout
//! and stderr, and how the attempt ended.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::Style;
use super::common::find_task_or_path;
use crate::journal::{Entry, Record, Tail, TaskId, TaskInfo, TaskStatus};
use crate::store::Store;
use crate::workspace::Workspace;

const LOGS: [&str; 2] = ["stdout.log", "stderr.log"];

/// What to show.
pub(crate) struct Shown {
    pub(crate) attempt: Option<u32>,
    /// Only the last this many lines of each log.
    pub(crate) tail: Option<usize>,
    /// Go on printing what the agent writes until its attempt ends.
    pub(crate) follow: bool,
}

pub(crate) fn run(ws: &Workspace, target: &str, shown: Shown) -> Result<u8> {
    let store = Store::open(ws)?;
    let task = find_task_or_path(ws, &store, target)?;
    if task.attempt == 0 {
        let status = serde_json::to_value(task.status)?;
        println!(
            "{} has not started yet ({})",
            task.id,
            status.as_str().unwrap_or("?")
        );
        return Ok(0);
    }
    let attempt = shown.attempt.unwrap_or(task.attempt);
    let dir = ws.attempt_dir(task.id.as_str(), attempt);
    if attempt == 0 || attempt > task.attempt || !dir.is_dir() {
        bail!(
            "{} has no attempt {attempt} (attempts: 1 to {})",
            task.id,
            task.attempt
        );
    }
    let st = Style::stdout();
    println!(
        "{}",
        st.bold(&format!(
            "{}  {} on {}  attempt {attempt} of {}  ({})",
            task.id,
            task.agent,
            task.input,
            task.attempt,
            dir.display()
        ))
    );
    let mut out = std::io::stdout().lock();
    let mut read_to = [0u64; 2];
    for (i, name) in LOGS.iter().enumerate() {
        let bytes = std::fs::read(dir.join(name)).unwrap_or_default();
        read_to[i] = bytes.len() as u64;
        let text = String::from_utf8_lossy(&bytes);
        let shown_text = match shown.tail {
            Some(n) => last_lines(&text, n),
            None => &text,
        };
        writeln!(
            out,
            "{}",
            st.dim(&format!("── {name} ({} bytes)", bytes.len()))
        )?;
        write!(out, "{shown_text}")?;
        if !shown_text.is_empty() && !shown_text.ends_with('\n') {
            writeln!(out)?;
        }
    }
    let running = task.attempt == attempt
        && matches!(task.status, TaskStatus::Running | TaskStatus::Committing);
    if shown.follow && running {
        let from = store.stamp()?.offset;
        follow(ws, &task, attempt, read_to, from, &mut out, st)?;
        return Ok(0);
    }
    if let Some((status, error)) = store.ending(&task.id, attempt)? {
        writeln!(
            out,
            "{}",
            st.dim(&format!("── {}", describe(&status, error)))
        )?;
    }
    Ok(0)
}

/// An attempt's ending as a line: its status, and its error if it has one.
fn describe(status: &str, error: Option<String>) -> String {
    match error {
        Some(error) => format!("{status}: {error}"),
        None => status.to_string(),
    }
}

/// How attempt `attempt` of `task` ended, as its `task.finished` record says.
fn ending(entries: &[Entry], task: &TaskId, attempt: u32) -> Option<String> {
    entries.iter().rev().find_map(|e| match &e.record {
        Record::Finished {
            task: t,
            attempt: a,
            status,
            error,
            ..
        } if t == task && *a == attempt => Some(describe(status.as_str(), error.clone())),
        _ => None,
    })
}

/// The last `n` lines of `text`.
fn last_lines(text: &str, n: usize) -> &str {
    let body = text.strip_suffix('\n').unwrap_or(text);
    match body.rmatch_indices('\n').nth(n.saturating_sub(1)) {
        Some((at, _)) if n > 0 => &text[at + 1..],
        _ if n == 0 => "",
        _ => text,
    }
}

/// Prints what the agent writes to its logs from `read_to` on, until the journal says
/// the attempt ended (or the daemon that ran it is gone).
fn follow(
    ws: &Workspace,
    task: &TaskInfo,
    attempt: u32,
    mut read_to: [u64; 2],
    from: u64,
    out: &mut impl Write,
    st: Style,
) -> Result<()> {
    // What is before `from` the store has, and was shown already.
    let mut tail = Tail::open_at(ws, from)?.context("the journal is gone")?;
    let dir = ws.attempt_dir(task.id.as_str(), attempt);
    let mut last_shown: Option<usize> = None;
    loop {
        let (entries, _) = tail.read_new()?;
        let ended = ending(&entries, &task.id, attempt);
        let gone = crate::pidfile::running_daemon(ws).is_none();
        for (i, name) in LOGS.iter().enumerate() {
            let Ok(mut file) = std::fs::File::open(dir.join(name)) else {
                continue;
            };
            file.seek(SeekFrom::Start(read_to[i]))?;
            let mut new = Vec::new();
            file.read_to_end(&mut new)?;
            if new.is_empty() {
                continue;
            }
            if last_shown != Some(i) {
                writeln!(out, "{}", st.dim(&format!("── {name}")))?;
                last_shown = Some(i);
            }
            out.write_all(&new)?;
            read_to[i] += new.len() as u64;
        }
        out.flush()?;
        if let Some(end) = ended {
            writeln!(out, "{}", st.dim(&format!("── {end}")))?;
            return Ok(());
        }
        if gone {
            writeln!(
                out,
                "{}",
                st.dim("── the daemon stopped; the attempt runs again at its next start")
            )?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::last_lines;

    #[test]
    fn the_last_lines_of_a_log() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("a\nb\n", 5), "a\nb\n");
        assert_eq!(last_lines("a\nb\n", 0), "");
    }
}
