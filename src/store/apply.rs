//! Journal entries into rows. Task records go through [`TaskInfo::apply`], the same
//! transitions the in-memory replay uses, so the store cannot drift from it in meaning;
//! each task touched is written once per transaction.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::journal::{Entry, Reason, Record, TaskId, TaskInfo, TaskStatus};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    -- the seq of the record that first queued it: journal order
    ord INTEGER NOT NULL,
    status TEXT NOT NULL,
    agent TEXT NOT NULL,
    parent TEXT,
    input TEXT NOT NULL,
    -- done, delegated, and its join not queued yet
    awaits_join INTEGER NOT NULL DEFAULT 0,
    -- the agent's pid while it may run
    pid INTEGER,
    info TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_ord ON tasks(ord);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks(status, ord);
CREATE INDEX IF NOT EXISTS tasks_by_parent ON tasks(parent, ord) WHERE parent IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_by_input ON tasks(input, ord);
CREATE INDEX IF NOT EXISTS tasks_awaiting_join ON tasks(ord) WHERE awaits_join = 1;
CREATE INDEX IF NOT EXISTS tasks_dead_with_pid ON tasks(ord)
    WHERE status = 'dead' AND pid IS NOT NULL;
CREATE TABLE IF NOT EXISTS task_outputs (
    path TEXT NOT NULL,
    task TEXT NOT NULL,
    ord INTEGER NOT NULL,
    PRIMARY KEY (path, task)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_outputs_by_task ON task_outputs(task);
CREATE TABLE IF NOT EXISTS status_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    seq INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    by TEXT NOT NULL,
    task TEXT,
    ts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_by_path ON versions(path, seq);
CREATE TABLE IF NOT EXISTS seen (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    hash TEXT NOT NULL,
    seen_ns INTEGER NOT NULL,
    config TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attempts (
    task TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (task, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    path TEXT NOT NULL,
    hash TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (path, hash)
) WITHOUT ROWID;
";

/// A task as its row's `info` holds it: everything [`TaskInfo`] knows, the fields it
/// keeps from `--json` included.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    info: TaskInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_time: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    cancelled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_at_ms: Option<u64>,
    seq: u64,
}

pub(super) fn encode(info: &TaskInfo) -> Result<String> {
    let stored = Stored {
        info: info.clone(),
        start_time: info.start_time,
        cancelled: info.cancelled,
        retry_at_ms: info.retry_at.and_then(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_millis() as u64)
        }),
        seq: info.seq,
    };
    Ok(serde_json::to_string(&stored)?)
}

pub(super) fn decode(text: &str) -> Result<TaskInfo> {
    let stored: Stored = serde_json::from_str(text).context("a task row of the state store")?;
    let mut info = stored.info;
    info.start_time = stored.start_time;
    info.cancelled = stored.cancelled;
    info.retry_at = stored
        .retry_at_ms
        .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    info.seq = stored.seq;
    Ok(info)
}

/// A task touched in this transaction.
struct Touched {
    /// The seq that first queued it, when that happened in this transaction.
    created: Option<u64>,
    /// Its status before this transaction (none for a new task).
    was: Option<TaskStatus>,
    /// Whether its outputs may have changed.
    outputs: bool,
}

/// Applies `entries` (all past the store's stamp, in `seq` order) within `tx`.
pub(super) fn entries(
    tx: &Connection,
    entries: &[&Entry],
    live: &mut HashMap<TaskId, TaskInfo>,
) -> Result<()> {
    let mut touched: HashMap<TaskId, Touched> = HashMap::new();
    // Tasks of this transaction that are final, so out of `live`: here until written.
    let mut settled: HashMap<TaskId, TaskInfo> = HashMap::new();
    for entry in entries {
        match &entry.record {
            Record::Artifact {
                path,
                hash,
                size,
                by,
                task,
            } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO versions(seq, path, hash, size, by, task, ts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    entry.seq as i64,
                    path.as_str(),
                    hash,
                    *size as i64,
                    by.as_str(),
                    task.as_ref().map(TaskId::as_str),
                    entry.ts
                ])?;
            }
            Record::Rejected { path, hash, error } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO rejected(path, hash, error) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![
                    path.as_str(),
                    hash.as_deref().unwrap_or(""),
                    error
                ])?;
            }
            Record::ConfigLoaded { hash } => {
                let mut set =
                    tx.prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")?;
                set.execute(params!["config_hash", hash])?;
                set.execute(params!["config_ts", entry.ts])?;
            }
            record => {
                if let Record::Finished {
                    task,
                    attempt,
                    status,
                    error,
                    ..
                } = record
                {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO attempts(task, attempt, status, error)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        task.as_str(),
                        attempt,
                        status.as_str(),
                        error
                    ])?;
                }
                let Some(id) = record.task() else { continue };
                let moved = advance(live, &mut settled, entry, |id| load(tx, id))?;
                let t = match moved {
                    Some(Advanced::Created) => touched.entry(id.clone()).or_insert(Touched {
                        created: Some(entry.seq),
                        was: None,
                        outputs: false,
                    }),
                    Some(Advanced::Moved { was }) => touched.entry(id.clone()).or_insert(Touched {
                        created: None,
                        was: Some(was),
                        outputs: false,
                    }),
                    None => continue, // a record of a task never queued: ignored
                };
                t.outputs |= matches!(record, Record::Committing { .. } | Record::Finished { .. });
            }
        }
    }
    let mut counts: HashMap<TaskStatus, i64> = HashMap::new();
    for (id, t) in &touched {
        let info = live
            .get(id)
            .or_else(|| settled.get(id))
            .expect("every task touched is live or settled");
        write(tx, info, t.created, t.outputs)?;
        if t.was != Some(info.status) {
            if let Some(was) = t.was {
                *counts.entry(was).or_default() -= 1;
            }
            *counts.entry(info.status).or_default() += 1;
        }
    }
    let mut count = tx.prepare_cached(
        "INSERT INTO status_counts(status, n) VALUES (?1, ?2)
         ON CONFLICT(status) DO UPDATE SET n = n + excluded.n",
    )?;
    for (status, n) in counts.into_iter().filter(|(_, n)| *n != 0) {
        count.execute(params![status.as_str(), n])?;
    }
    Ok(())
}

/// How [`advance`] found a task.
pub(crate) enum Advanced {
    /// A `task.queued` created it.
    Created,
    /// It was known, with status `was`.
    Moved { was: TaskStatus },
}

/// Moves the task of `entry` on, taking it from `live` or `settled` (done or dead, not
/// yet written) or else from `load`, and putting it back in the one its status now
/// calls for. `None` for a record of a task never queued. Shared by the store's writes
/// and the daemon's batched ledger, so both hold their unwritten tasks alike.
pub(crate) fn advance(
    live: &mut HashMap<TaskId, TaskInfo>,
    settled: &mut HashMap<TaskId, TaskInfo>,
    entry: &Entry,
    load: impl FnOnce(&TaskId) -> Result<Option<TaskInfo>>,
) -> Result<Option<Advanced>> {
    let Some(id) = entry.record.task() else {
        return Ok(None);
    };
    let known = match live.remove(id).or_else(|| settled.remove(id)) {
        Some(info) => Some(info),
        None => load(id)?,
    };
    let (info, how) = match known {
        Some(mut info) => {
            let was = info.status;
            info.apply(entry);
            (info, Advanced::Moved { was })
        }
        None => match TaskInfo::queued(entry) {
            Some(info) => (info, Advanced::Created),
            None => return Ok(None),
        },
    };
    if info.status.is_final() {
        settled.insert(id.clone(), info);
    } else {
        live.insert(id.clone(), info);
    }
    Ok(Some(how))
}

/// Moves `live` on by an entry the store already holds (another process applied it
/// first). A task `live` does not hold is read from its row, which holds the entry
/// and may be ahead of it: the task's `seq` keeps what is in from being applied again.
pub(super) fn applied_elsewhere(
    tx: &Connection,
    entry: &Entry,
    live: &mut HashMap<TaskId, TaskInfo>,
) -> Result<()> {
    let Some(id) = entry.record.task() else {
        return Ok(());
    };
    let known = match live.remove(id) {
        Some(info) => Some(info),
        None => load(tx, id)?,
    };
    if let Some(mut info) = known {
        info.apply(entry);
        if !info.status.is_final() {
            live.insert(id.clone(), info);
        }
    }
    Ok(())
}

pub(super) fn load(conn: &Connection, id: &TaskId) -> Result<Option<TaskInfo>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT info FROM tasks WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?;
    text.as_deref().map(decode).transpose()
}

/// Writes one task's row, with its outputs and the join flags it sets.
fn write(tx: &Connection, info: &TaskInfo, created: Option<u64>, outputs: bool) -> Result<()> {
    let join = crate::join::join_id(info);
    let awaits = info.status == TaskStatus::Done
        && !info.delegated.is_empty()
        && load_exists(tx, &join)?.is_none();
    let text = encode(info)?;
    match created {
        Some(ord) => {
            tx.prepare_cached(
                "INSERT INTO tasks(id, ord, status, agent, parent, input, awaits_join, pid, info)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                info.id.as_str(),
                ord as i64,
                info.status.as_str(),
                info.agent,
                info.parent.as_ref().map(TaskId::as_str),
                info.input.as_str(),
                awaits,
                info.pid,
                text
            ])?;
            // The join of its parent is queued: the parent awaits it no more.
            if let (Reason::Join, Some(parent)) = (info.reason, &info.parent) {
                if load(tx, parent)?.is_some_and(|p| crate::join::join_id(&p) == info.id) {
                    tx.prepare_cached("UPDATE tasks SET awaits_join = 0 WHERE id = ?1")?
                        .execute([parent.as_str()])?;
                }
            }
        }
        None => {
            tx.prepare_cached(
                "UPDATE tasks SET status = ?2, awaits_join = ?3, pid = ?4, info = ?5 WHERE id = ?1",
            )?
            .execute(params![
                info.id.as_str(),
                info.status.as_str(),
                awaits,
                info.pid,
                text
            ])?;
        }
    }
    if !outputs {
        return Ok(());
    }
    tx.prepare_cached("DELETE FROM task_outputs WHERE task = ?1")?
        .execute([info.id.as_str()])?;
    if !info.outputs.is_empty() {
        let ord: i64 = tx
            .prepare_cached("SELECT ord FROM tasks WHERE id = ?1")?
            .query_row([info.id.as_str()], |r| r.get(0))?;
        let mut add = tx.prepare_cached(
            "INSERT OR IGNORE INTO task_outputs(path, task, ord) VALUES (?1, ?2, ?3)",
        )?;
        for o in &info.outputs {
            add.execute(params![o.path.as_str(), info.id.as_str(), ord])?;
        }
    }
    Ok(())
}

fn load_exists(conn: &Connection, id: &TaskId) -> Result<Option<()>> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?
        .query_row([id.as_str()], |_| Ok(()))
        .optional()?)
}
