//! The derived store: the journal's state in SQLite (`.baton/state.db`), with indexes,
//! so reports and the daemon ask for what they need instead of replaying everything
//! that ever ran (ARCHITECTURE.md, "History").
//!
//! The journal stays the source of truth. The store is stamped with the last `seq` it
//! applied and the journal offset after it; whoever opens it applies what the journal
//! holds past that offset, in one write transaction, so a crash between a journal append
//! and the store's update loses nothing (the next reader applies it) and duplicates
//! nothing (entries at or below the stamp are skipped). A store that is missing,
//! unreadable, from another schema version or from another journal is rebuilt.
//!
//! - [`apply`]: records into rows, through the same task transitions as the replay;
//! - [`query`]: the questions reports and the rules ask;
//! - [`seen`]: each file's stat when it was last hashed, for restarts that check by stat.

pub(crate) use apply::advance;
pub(crate) use query::VersionRow;
pub(crate) use seen::{Seen, SeenCheck, Stat};

mod apply;
mod query;
mod seen;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::journal::segments;
use crate::journal::{Entry, TaskId, TaskInfo};
use crate::progress::Progress;
use crate::workspace::Workspace;

/// Bumped whenever the schema or what is derived into it changes: a store of another
/// version is rebuilt.
const SCHEMA_VERSION: i64 = 1;

/// Entries applied per transaction while rebuilding.
const REBUILD_BATCH: usize = 20_000;

/// The journal's first bytes, kept to recognise the journal a store was built from.
const HEAD_BYTES: usize = 256;

/// A rebuild in progress: `state.db.rebuilding-PID-NANOS`.
const REBUILDING: &str = "state.db.rebuilding-";

/// Whether `err` is SQLite refusing a write to a store this process may only read.
fn is_read_only(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(
            e.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::ReadOnly
        )
    })
}

pub(crate) fn store_path(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("state.db")
}

pub(crate) struct Store {
    conn: Connection,
    /// The journal's folder, with its segments.
    journal: PathBuf,
}

/// Where the store stands in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) last_seq: u64,
    /// The journal's logical offset just past the last entry applied.
    pub(crate) offset: u64,
}

impl Store {
    /// Opens the store and brings it up to the journal's end, building it first if it
    /// is missing, unreadable, of another version or of another journal.
    pub(crate) fn open(ws: &Workspace) -> Result<Store> {
        let path = store_path(ws);
        match Store::open_current(ws, &path) {
            Ok(Some(mut store)) => match store.catch_up(&mut HashMap::new()) {
                Ok(_) => Ok(store),
                Err(e) if is_read_only(&e) => {
                    store.wait_for_writer()?;
                    Ok(store)
                }
                Err(e) => Err(e),
            },
            Ok(None) => Store::rebuild(ws),
            Err(e) => {
                tracing::warn!(
                    store = %path.display(),
                    "the state store cannot be used ({e:#}); rebuilding it from the journal"
                );
                Store::rebuild(ws)
            }
        }
    }

    /// For a process that may not write the store (an agent in the sandbox): waits for
    /// the daemon, which writes what it journals within `ledger::FLUSH_AFTER`, to bring
    /// the store to the journal's end as it is now. If it does not within a second (a
    /// daemon busy with a long burst, or none), the store is used as it is, a little
    /// behind, which the log says.
    fn wait_for_writer(&self) -> Result<()> {
        let target = segments::end(&self.journal)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while self.stamp()?.offset < target {
            if std::time::Instant::now() >= deadline {
                tracing::info!(
                    "the state store is behind the journal and this process may not write \
                     it: answering from it as it is"
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// The store at `path` if it is one of this version built from this journal.
    fn open_current(ws: &Workspace, path: &Path) -> Result<Option<Store>> {
        if !path.exists() {
            return Ok(None);
        }
        let store = Store::connect(ws, path)?;
        let version: Option<i64> = store.meta("version")?;
        if version != Some(SCHEMA_VERSION) {
            tracing::info!(
                "the state store is of schema version {version:?}, not {SCHEMA_VERSION}: rebuilding it"
            );
            return Ok(None);
        }
        let head: Option<String> = store.meta("journal_head")?;
        let stamp = store.stamp()?;
        let len = segments::end(&store.journal)?;
        let head = head.unwrap_or_default();
        // A store made before the journal had a line holds nothing to mistake.
        let empty = head.is_empty() && stamp.offset == 0;
        if (!empty && head != journal_head(&store.journal)?) || stamp.offset > len {
            tracing::info!("the state store was built from another journal: rebuilding it");
            return Ok(None);
        }
        Ok(Some(store))
    }

    fn connect(ws: &Workspace, path: &Path) -> Result<Store> {
        std::fs::create_dir_all(ws.state_dir())
            .with_context(|| format!("creating {}", ws.state_dir().display()))?;
        let conn = Connection::open(path)
            .with_context(|| format!("opening the state store {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // WAL: reports read while the daemon writes. NORMAL: a commit is not fsynced;
        // what a power loss takes back, the journal has and the next open applies.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        // The query planner's stability guarantee: without it, a cached statement whose
        // plan looked at a bound value (any `LIMIT ?`) is prepared again at every new
        // binding (a fifth of an ingest's time, bench/RESULTS.md).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        conn.execute_batch(apply::SCHEMA)
            .with_context(|| format!("creating the tables of {}", path.display()))?;
        Ok(Store {
            conn,
            journal: ws.journal_dir(),
        })
    }

    /// Builds the store afresh from the journal, with a progress bar on long journals.
    pub(crate) fn rebuild(ws: &Workspace) -> Result<Store> {
        let path = store_path(ws);
        remove_abandoned_rebuilds(ws);
        // Each rebuild has a file of its own: two processes may find the store missing
        // at once; both build the same thing, and the last to finish puts its in place.
        let fresh = ws.state_dir().join(format!(
            "{REBUILDING}{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let mut store = Store::connect(ws, &fresh)?;
        store.conn.pragma_update(None, "synchronous", "OFF")?;
        store.set_meta("version", SCHEMA_VERSION)?;
        store.set_meta("journal_head", journal_head(&store.journal)?)?;
        let total = segments::end(&store.journal)?;
        let mut progress = Progress::bytes(
            "rebuilding the state store",
            0,
            total,
            Duration::from_millis(500),
        );
        store.apply_journal(0, &mut HashMap::new(), REBUILD_BATCH, &mut |bytes| {
            progress.advance(bytes)
        })?;
        progress.finish();
        // Everything into the main file, so the rename carries every row.
        store
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        drop(store);
        // Left by the store replaced (a deleted or corrupt one), they belong to no file.
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        std::fs::rename(&fresh, &path)
            .with_context(|| format!("putting the rebuilt store in place at {}", path.display()))?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", fresh.display()));
        }
        let mut store = Store::connect(ws, &path)?;
        store.catch_up(&mut HashMap::new())?;
        Ok(store)
    }

    /// Applies what the journal holds past the store's stamp. `live` is the caller's
    /// cache of unfinished tasks (see [`Store::apply`]).
    pub(crate) fn catch_up(&mut self, live: &mut HashMap<TaskId, TaskInfo>) -> Result<Stamp> {
        let from = self.stamp()?.offset;
        self.apply_journal(from, live, usize::MAX, &mut |_| {})
    }

    /// Reads the journal from `from` and applies its whole lines, `batch` entries per
    /// transaction.
    fn apply_journal(
        &mut self,
        from: u64,
        live: &mut HashMap<TaskId, TaskInfo>,
        batch: usize,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Stamp> {
        let mut entries = Vec::new();
        let mut last = from;
        let journal = self.journal.clone();
        let offset = segments::for_each_line(&journal, from, None, |line, end| {
            progress(end - last);
            last = end;
            if !line.iter().all(u8::is_ascii_whitespace) {
                match serde_json::from_slice::<Entry>(line) {
                    Ok(entry) => entries.push(entry),
                    Err(e) => tracing::warn!(
                        journal = %journal.display(),
                        "skipping an unreadable journal line: {e}"
                    ),
                }
            }
            if entries.len() >= batch {
                self.apply(&entries, end, live)?;
                entries.clear();
            }
            Ok(())
        })?;
        self.apply(&entries, offset, live)?;
        self.stamp()
    }

    /// Applies `entries`, which end at journal offset `end`, in one transaction.
    /// Entries at or below the stamp were applied already (by another process) and are
    /// not applied again. `live` holds unfinished tasks as of the entry before
    /// `entries`: it is read before the store, and left holding the unfinished tasks as
    /// of the last entry, the skipped ones included.
    pub(crate) fn apply(
        &mut self,
        entries: &[Entry],
        end: u64,
        live: &mut HashMap<TaskId, TaskInfo>,
    ) -> Result<()> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let stamp = read_stamp(&tx)?;
        for entry in entries.iter().filter(|e| e.seq <= stamp.last_seq) {
            apply::applied_elsewhere(&tx, entry, live)?;
        }
        let fresh: Vec<&Entry> = entries.iter().filter(|e| e.seq > stamp.last_seq).collect();
        if let Some(first) = fresh.first() {
            if stamp.last_seq > 0 && first.seq > stamp.last_seq + 1 && stamp.offset < end {
                // Entries between the stamp and these were never applied here: read
                // them from the journal instead, in order.
                drop(tx);
                return self.catch_up(live).map(|_| ());
            }
        }
        apply::entries(&tx, &fresh, live)?;
        if stamp.offset == 0 && end > 0 {
            // The store was made before the journal had a line: it now has one.
            tx.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('journal_head', ?1)",
                [journal_head(&self.journal)?],
            )?;
        }
        let last_seq = fresh.last().map_or(stamp.last_seq, |e| e.seq);
        if last_seq != stamp.last_seq || end > stamp.offset {
            write_stamp(
                &tx,
                Stamp {
                    last_seq,
                    offset: end.max(stamp.offset),
                },
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn stamp(&self) -> Result<Stamp> {
        read_stamp(&self.conn)
    }

    fn meta<T: rusqlite::types::FromSql>(&self, key: &str) -> Result<Option<T>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&self, key: &str, value: impl rusqlite::ToSql) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(())
    }
}

/// The last `seq` the store at `ws` says it applied, without building or changing
/// anything (`None` with no store, or one that cannot be read).
pub(crate) fn recorded_seq(ws: &Workspace) -> Option<u64> {
    let path = store_path(ws);
    if !path.exists() {
        return None;
    }
    let conn =
        Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    read_stamp(&conn).ok().map(|s| s.last_seq)
}

/// Removes the files of rebuilds whose process is gone (killed half-way).
fn remove_abandoned_rebuilds(ws: &Workspace) {
    let Ok(dir) = std::fs::read_dir(ws.state_dir()) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(REBUILDING)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn read_stamp(conn: &Connection) -> Result<Stamp> {
    let get = |key: &str| -> Result<u64> {
        let v: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        Ok(v.unwrap_or(0) as u64)
    };
    Ok(Stamp {
        last_seq: get("last_seq")?,
        offset: get("offset")?,
    })
}

fn write_stamp(conn: &Connection, stamp: Stamp) -> Result<()> {
    let mut stmt =
        conn.prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")?;
    stmt.execute(params!["last_seq", stamp.last_seq as i64])?;
    stmt.execute(params!["offset", stamp.offset as i64])?;
    Ok(())
}

/// The journal's first line, or its first [`HEAD_BYTES`] if the line is longer; empty
/// while the journal has no whole line.
fn journal_head(journal: &Path) -> Result<String> {
    let mut head = segments::head(journal, HEAD_BYTES)?;
    match head.iter().position(|&b| b == b'\n') {
        Some(i) => head.truncate(i + 1),
        None if head.len() < HEAD_BYTES => head.clear(),
        None => {}
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;
    use crate::journal::{
        Appender, Attribution, Author, Decision, Durability, History, Output, Reason, Record,
        State, Status, TaskStatus, journal_path, read_all,
    };
    use crate::workspace::RelPath;

    pub(crate) const TASKS: [&str; 6] = ["t-a1", "t-a2", "t-b1", "t-b2", "t-c1", "t-c2"];
    pub(crate) const PATHS: [&str; 4] =
        ["briefs/a.md", "drafts/b.md", "briefs/c.md", "drafts/d.md"];

    pub(crate) fn task(i: usize) -> TaskId {
        TaskId::from(TASKS[i % TASKS.len()])
    }

    pub(crate) fn path(i: usize) -> RelPath {
        RelPath::new(PATHS[i % PATHS.len()]).unwrap()
    }

    fn outputs(mask: u8) -> Vec<Output> {
        (0..PATHS.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| Output {
                path: path(i),
                hash: format!("h{i}"),
            })
            .collect()
    }

    /// Any record, about a handful of tasks and paths, so sequences revisit them.
    pub(crate) fn record() -> impl Strategy<Value = Record> {
        let status = prop_oneof![
            Just(Status::Done),
            Just(Status::Failed),
            Just(Status::Dead),
            Just(Status::Held)
        ];
        prop_oneof![
            4 => (0..6usize, 0..4usize, 0..3u8, proptest::option::of(0..6usize), 0..3u8).prop_map(
                |(t, p, h, parent, join)| Record::Queued {
                    task: task(t),
                    agent: format!("agent{}", t % 3),
                    input: path(p),
                    input_hash: format!("h{h}"),
                    parent: parent.map(task),
                    depth: 0,
                    reason: [Reason::Glob, Reason::Join, Reason::Fallback][join as usize],
                    refs: Vec::new(),
                    writes: Vec::new(),
                    deadline: None,
                    deadline_asked: None,
                    budget: None,
                    budget_asked: None,
                }
            ),
            3 => (0..6usize, 1..4u32).prop_map(|(t, attempt)| Record::Started {
                task: task(t),
                attempt,
                pid: 100 + attempt,
                start_time: 7,
                sandbox: Default::default(),
            }),
            1 => (0..6usize, 0..16u8).prop_map(|(t, mask)| Record::Committing {
                task: task(t),
                attempt: 1,
                outputs: outputs(mask),
            }),
            4 => (0..6usize, 1..4u32, status, 0..16u8, 0..4u8, proptest::option::of(1..5000u64))
                .prop_map(|(t, attempt, status, mask, delegated, retry)| Record::Finished {
                    task: task(t),
                    attempt,
                    status,
                    exit: Some(0),
                    duration_ms: 12,
                    outputs: outputs(mask),
                    error: (status != Status::Done).then(|| "it failed".to_string()),
                    result: None,
                    retry_in_ms: retry.filter(|_| status == Status::Failed),
                    delegated: outputs(mask & delegated).into_iter().map(|o| o.path).collect(),
                }),
            1 => (0..6usize, any::<bool>()).prop_map(|(t, ok)| Record::Approval {
                task: task(t),
                decision: if ok { Decision::Approved } else { Decision::Rejected },
                by: Author::Human,
                note: None,
            }),
            1 => (0..6usize).prop_map(|t| Record::Cancelled {
                task: task(t),
                by: Author::Human,
            }),
            1 => (0..6usize).prop_map(|t| Record::Escalated { task: task(t) }),
            1 => (0..6usize, 0..16u8).prop_map(|(t, mask)| Record::Resolved {
                task: task(t),
                by: Author::Human,
                outputs: outputs(mask),
            }),
            3 => (0..4usize, 0..3u8, proptest::option::of(0..6usize)).prop_map(|(p, h, t)| {
                let who = match t {
                    Some(t) => Attribution::agent("agent0", &task(t)),
                    None => Attribution::human(),
                };
                Record::artifact(path(p), format!("h{h}"), 10, who)
            }),
            1 => (0..4usize, 0..3u8).prop_map(|(p, h)| Record::Rejected {
                path: path(p),
                hash: Some(format!("h{h}")),
                error: format!("bad {h}"),
            }),
            1 => (0..3u8).prop_map(|h| Record::ConfigLoaded { hash: format!("c{h}") }),
        ]
    }

    /// `history` answers the rules' questions ([`History`]) as the full replay does.
    pub(crate) fn history_agrees(history: &dyn History, state: &State) {
        for i in 0..TASKS.len() {
            let id = task(i);
            let got = history.task(&id).unwrap().map(|t| t.into_owned());
            assert_eq!(got.as_ref(), state.tasks.get(&id), "task {id}");
            let mut want: Vec<TaskId> = state.children.get(&id).cloned().unwrap_or_default();
            want.dedup();
            let got: Vec<TaskId> = history
                .children(&id)
                .unwrap()
                .into_iter()
                .map(|t| t.id)
                .collect();
            assert_eq!(got, want, "children of {id}");
        }
        for i in 0..PATHS.len() {
            let p = path(i);
            assert_eq!(
                history.artifact(&p).unwrap(),
                state.artifacts.get(&p).cloned(),
                "{p}"
            );
            for h in 0..3 {
                let h = format!("h{h}");
                assert_eq!(
                    history.rejection(&p, &h).unwrap(),
                    state.rejected.get(&(p.clone(), h.clone())).cloned()
                );
            }
        }
    }

    /// The store answers every question as the full replay does.
    fn agrees(store: &Store, state: &State) {
        history_agrees(store, state);
        let known: HashSet<&TaskId> = state.tasks.keys().collect();
        for i in 0..PATHS.len() {
            let p = path(i);
            let touching: Vec<TaskId> = store
                .tasks_touching(&p)
                .unwrap()
                .into_iter()
                .map(|t| t.id)
                .collect();
            let want: Vec<TaskId> = state
                .order
                .iter()
                .filter(|id| {
                    let t = &state.tasks[*id];
                    t.input == p || t.outputs.iter().any(|o| o.path == p)
                })
                .cloned()
                .collect();
            assert_eq!(touching, want, "tasks touching {p}");
        }
        for status in [
            TaskStatus::Queued,
            TaskStatus::Running,
            TaskStatus::Committing,
            TaskStatus::Failed,
            TaskStatus::Done,
            TaskStatus::Dead,
            TaskStatus::Held,
            TaskStatus::Escalated,
        ] {
            let want: Vec<&TaskId> = state
                .order
                .iter()
                .filter(|id| state.tasks[*id].status == status)
                .collect();
            let got = store.tasks_with(status, None).unwrap();
            assert_eq!(
                got.iter().map(|t| &t.id).collect::<Vec<_>>(),
                want,
                "{status:?}"
            );
            assert_eq!(store.count(status).unwrap(), want.len(), "count {status:?}");
        }
        let awaiting: Vec<TaskId> = state
            .order
            .iter()
            .map(|id| &state.tasks[id])
            .filter(|t| {
                t.status == TaskStatus::Done
                    && !t.delegated.is_empty()
                    && !known.contains(&crate::join::join_id(t))
            })
            .map(|t| t.id.clone())
            .collect();
        let got: Vec<TaskId> = store
            .awaiting_joins()
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(got, awaiting, "awaiting joins");
        assert_eq!(store.config().unwrap(), state.config);
        assert_eq!(store.stamp().unwrap().last_seq, state.last_seq);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Records appended in chunks, applied by two processes' stores in turn (each
        /// skipping what the other applied) and by a fresh rebuild: every one agrees
        /// with replaying the whole journal, and the live set is the unfinished tasks.
        #[test]
        fn the_store_agrees_with_a_full_replay(
            chunks in proptest::collection::vec(proptest::collection::vec(record(), 1..6), 1..12),
            order in proptest::collection::vec(any::<bool>(), 12),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let ws = Workspace::at(tmp.path().to_path_buf());
            let mut appender = Appender::open(&ws).unwrap();
            let mut ours = Store::open(&ws).unwrap();
            let mut theirs = Store::open(&ws).unwrap();
            let mut live = HashMap::new();
            for (i, chunk) in chunks.into_iter().enumerate() {
                let (written, _) = appender.append(chunk, Durability::Buffered).unwrap();
                if order[i] {
                    // Another process got there first: ours skips what it applied.
                    theirs.catch_up(&mut HashMap::new()).unwrap();
                }
                ours.apply(&written, appender.offset(), &mut live).unwrap();
            }
            let state = State::replay(&read_all(&ws).unwrap());
            agrees(&ours, &state);
            theirs.catch_up(&mut HashMap::new()).unwrap();
            agrees(&theirs, &state);
            let unfinished: HashMap<TaskId, TaskInfo> = state
                .tasks
                .iter()
                .filter(|(_, t)| !t.status.is_final())
                .map(|(id, t)| (id.clone(), t.clone()))
                .collect();
            let touched: HashMap<TaskId, TaskInfo> = live;
            prop_assert_eq!(touched, unfinished);
            let rebuilt = Store::rebuild(&ws).unwrap();
            agrees(&rebuilt, &state);
        }
    }

    #[test]
    fn a_corrupt_store_is_rebuilt_and_one_of_another_journal_too() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        let queued = |t: &str| Record::Queued {
            task: TaskId::from(t),
            agent: "w".into(),
            input: path(0),
            input_hash: "h".into(),
            parent: None,
            depth: 0,
            reason: Reason::Glob,
            refs: Vec::new(),
            writes: Vec::new(),
            deadline: None,
            deadline_asked: None,
            budget: None,
            budget_asked: None,
        };
        let mut appender = Appender::open(&ws).unwrap();
        appender
            .append(vec![queued("t-1"), queued("t-2")], Durability::Buffered)
            .unwrap();
        drop(Store::open(&ws).unwrap());
        std::fs::write(store_path(&ws), b"this is not a database").unwrap();
        let _ = std::fs::remove_file(format!("{}-wal", store_path(&ws).display()));
        let store = Store::open(&ws).unwrap();
        assert_eq!(store.count(TaskStatus::Queued).unwrap(), 2);
        drop(store);
        // baton begins no new journal while the store remembers records...
        std::fs::remove_file(journal_path(&ws)).unwrap();
        let refused = Appender::open(&ws).err().unwrap().to_string();
        assert!(refused.contains("run every brief again"), "{refused}");
        // ...but another journal put in its place: the store is rebuilt from it.
        let other = tempfile::tempdir().unwrap();
        let other_ws = Workspace::at(other.path().to_path_buf());
        Appender::open(&other_ws)
            .unwrap()
            .append(vec![queued("t-9")], Durability::Buffered)
            .unwrap();
        std::fs::copy(journal_path(&other_ws), journal_path(&ws)).unwrap();
        let store = Store::open(&ws).unwrap();
        assert_eq!(store.count(TaskStatus::Queued).unwrap(), 1);
        assert!(store.task(&TaskId::from("t-9")).unwrap().is_some());
    }
}
