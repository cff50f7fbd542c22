//! `baton log [-n N] [--since T] [--until T] [--agent A] [--task T] [--follow] [--json]`:
//! the activity feed, from the journal.
//!
//! With `-n` or `--since` the journal is read backwards from its end, and only as far as
//! what is printed (and, with `--task`, no further back than the task's first record);
//! otherwise it streams from the start. Agents of tasks are looked up in the state store,
//! so the cost follows what is printed, not the history's length.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};

use super::Style;
use super::feed::feed_line;
use crate::error::usage;
use crate::journal::segments::{self, ReverseLines};
use crate::journal::{Entry, History, Record, Tail, TaskId};
use crate::store::Store;
use crate::workspace::Workspace;

/// Which records to print.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    /// Only the last this many.
    pub(crate) last: Option<usize>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) agent: Option<String>,
    pub(crate) task: Option<String>,
}

/// A filter with its times as the journal writes them and its task resolved.
struct Wanted {
    last: Option<usize>,
    since: Option<String>,
    until: Option<String>,
    agent: Option<String>,
    task: Option<(TaskId, u64)>,
}

pub(crate) fn run(ws: &Workspace, filter: Filter, follow: bool, as_json: bool) -> Result<u8> {
    let mut store = Store::open(ws)?;
    let wanted = Wanted {
        last: filter.last,
        since: filter.since.as_deref().map(journal_time).transpose()?,
        until: filter.until.as_deref().map(journal_time).transpose()?,
        agent: filter.agent,
        task: match filter.task.as_deref() {
            Some(prefix) => {
                let task = store.find_task(prefix)?;
                let first = store.first_seq(&task.id)?.unwrap_or(0);
                Some((task.id, first))
            }
            None => None,
        },
    };
    let st = Style::stdout();
    let mut out = std::io::stdout().lock();
    let end = store.stamp()?.offset;
    let agents = Agents::default();
    let print = |entry: &Entry, store: &Store, out: &mut dyn Write| -> Result<()> {
        if !wanted.matches(entry, &agents, store) {
            return Ok(());
        }
        if as_json {
            serde_json::to_writer(&mut *out, entry)?;
            writeln!(out)?;
        } else {
            let agent_of = |t: &TaskId| agents.get(t, store);
            if let Some(line) = feed_line(&agent_of, entry, st) {
                writeln!(out, "{line}")?;
            }
        }
        Ok(())
    };
    if wanted.last.is_some() || wanted.since.is_some() {
        for entry in wanted.backwards(ws, end, &agents, &store)? {
            print(&entry, &store, &mut out)?;
        }
    } else {
        forwards(ws, end, |entry| print(entry, &store, &mut out))?;
    }
    out.flush()?;
    if !follow {
        return Ok(0);
    }
    let mut tail = None;
    loop {
        if tail.is_none() {
            tail = Tail::open_at(ws, end)?;
        }
        if let Some(t) = tail.as_mut() {
            let (entries, _) = t.read_new()?;
            if !entries.is_empty() {
                // New tasks' agents are looked up in the store: bring it up to date.
                store.catch_up(&mut HashMap::new())?;
            }
            for entry in &entries {
                print(entry, &store, &mut out)?;
            }
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Wanted {
    fn matches(&self, entry: &Entry, agents: &Agents, store: &Store) -> bool {
        if self.since.as_ref().is_some_and(|s| entry.ts < *s)
            || self.until.as_ref().is_some_and(|u| entry.ts > *u)
        {
            return false;
        }
        if let Some((task, _)) = &self.task {
            let about = match &entry.record {
                Record::Artifact { task: t, .. } => t.as_ref(),
                record => record.task(),
            };
            if about != Some(task) {
                return false;
            }
        }
        if let Some(agent) = &self.agent {
            let by = match &entry.record {
                Record::Artifact { by, .. } => Some(by.as_str().to_string()),
                Record::Queued { agent, .. } => Some(agent.clone()),
                record => record.task().and_then(|t| agents.get(t, store)),
            };
            if by.as_deref() != Some(agent.as_str()) {
                return false;
            }
        }
        true
    }

    /// The matching entries before journal offset `end`, oldest first, read from the
    /// end back only as far as needed.
    fn backwards(
        &self,
        ws: &Workspace,
        end: u64,
        agents: &Agents,
        store: &Store,
    ) -> Result<Vec<Entry>> {
        let dir = ws.journal_dir();
        let floor = self.task.as_ref().map_or(0, |(_, first)| *first);
        let mut found = Vec::new();
        for line in ReverseLines::new(&dir, end)? {
            let line = line.with_context(|| format!("reading the journal in {}", dir.display()))?;
            let Ok(entry) = serde_json::from_slice::<Entry>(&line) else {
                continue;
            };
            if entry.seq < floor || self.since.as_ref().is_some_and(|s| entry.ts < *s) {
                break;
            }
            if self.matches(&entry, agents, store) {
                found.push(entry);
                if self.last.is_some_and(|n| found.len() >= n) {
                    break;
                }
            }
        }
        found.reverse();
        Ok(found)
    }
}

/// Calls `each` on every entry before journal offset `end`, oldest first, streaming.
fn forwards(ws: &Workspace, end: u64, mut each: impl FnMut(&Entry) -> Result<()>) -> Result<()> {
    segments::for_each_line(
        &ws.journal_dir(),
        0,
        Some(end),
        |line, _| match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => each(&entry),
            Err(_) => Ok(()),
        },
    )?;
    Ok(())
}

/// Tasks' agents, looked up in the store once each.
#[derive(Default)]
struct Agents(std::cell::RefCell<HashMap<TaskId, Option<String>>>);

impl Agents {
    fn get(&self, task: &TaskId, store: &Store) -> Option<String> {
        if let Some(known) = self.0.borrow().get(task) {
            return known.clone();
        }
        let agent = store.task(task).ok().flatten().map(|t| t.agent.clone());
        self.0.borrow_mut().insert(task.clone(), agent.clone());
        agent
    }
}

/// A time as the user gives it (RFC 3339, a date, or a duration ago such as `2h`), as
/// the journal writes times, so the two compare as strings.
fn journal_time(given: &str) -> Result<String> {
    let given = given.trim();
    let at = if let Ok(ago) = humantime::parse_duration(given) {
        SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    } else if let Ok(at) = humantime::parse_rfc3339_weak(given) {
        at
    } else if let Ok(at) = humantime::parse_rfc3339_weak(&format!("{given} 00:00:00")) {
        at
    } else {
        return Err(usage!(
            "`{given}` is not a time: give one as 2026-12-01T09:30:00Z, 2026-12-01, or a duration ago such as 2h or 3days"
        ));
    };
    Ok(humantime::format_rfc3339_millis(at).to_string())
}

/// The lines of a file before offset `end`, last first, read a block at a time.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_the_journal_writes_them() {
        assert_eq!(
            journal_time("2026-12-01T09:30:00Z").unwrap(),
            "2026-12-01T09:30:00.000Z"
        );
        assert_eq!(
            journal_time("2026-12-01").unwrap(),
            "2026-12-01T00:00:00.000Z"
        );
        assert!(
            journal_time("2h").unwrap()
                < humantime::format_rfc3339_millis(SystemTime::now()).to_string()
        );
        assert!(journal_time("yesterday-ish").is_err());
    }
}
