//! The manifest: an append-only JSON Lines journal of everything that happened
//! (DESIGN §5), and its replay into [`State`].
//!
//! Any baton process may append (the daemon, `drop`, `retry`, …). Appends happen under
//! the journal file's exclusive `flock`, so records never interleave and `seq` only
//! grows; the appender learns the last `seq` from the bytes other processes added since
//! its last append. A torn last line (a writer that crashed mid-line) is ignored on read
//! and cut off by the next appender, which holds the lock and so knows nobody is writing.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::workspace::{RelPath, Workspace};

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    #[serde(flatten)]
    pub record: Record,
}

impl Entry {
    pub fn time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.ts).ok()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind")]
pub enum Record {
    /// A version of an artifact became visible in a stage.
    #[serde(rename = "artifact")]
    Artifact {
        path: RelPath,
        hash: String,
        size: u64,
        /// The agent's name, `human` or `external`.
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<String>,
    },
    #[serde(rename = "task.queued")]
    Queued {
        task: String,
        agent: String,
        input: RelPath,
        input_hash: String,
        parent: Option<String>,
        depth: u32,
        reason: Reason,
        /// The input's front-matter `refs`, resolved to workspace paths.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        refs: Vec<RelPath>,
    },
    #[serde(rename = "task.started")]
    Started {
        task: String,
        attempt: u32,
        pid: u32,
        /// The process's start time in clock ticks since boot (/proc/PID/stat field 22),
        /// so a restarted daemon kills only the group it started, never a reused pid.
        start_time: u64,
    },
    /// Written (and fsynced) before the first output is renamed into place: a daemon that
    /// crashes mid-commit rolls the commit forward on restart from this list.
    #[serde(rename = "task.committing")]
    Committing {
        task: String,
        attempt: u32,
        outputs: Vec<Output>,
    },
    #[serde(rename = "task.finished")]
    Finished {
        task: String,
        attempt: u32,
        status: Status,
        exit: Option<i32>,
        duration_ms: u64,
        #[serde(default)]
        outputs: Vec<Output>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
        /// For `failed`: how long after this record the next attempt is due.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
        /// The outputs that are briefs delegated by this task (`reply_to` = this task):
        /// when all of them are settled, the task's agent runs once more as a join.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        delegated: Vec<RelPath>,
    },
    #[serde(rename = "approval")]
    Approval {
        task: String,
        decision: Decision,
        by: String,
        note: Option<String>,
    },
    /// An artifact that could not be handled (bad front matter, unknown agent, …). It is
    /// left where it is; the record names the version so it is not reported again.
    #[serde(rename = "rejected")]
    Rejected {
        path: RelPath,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hash: Option<String>,
        error: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Output {
    pub path: RelPath,
    pub hash: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    Glob,
    To,
    Delegate,
    Join,
    Retry,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Done,
    Failed,
    Dead,
    Held,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approved,
    Rejected,
}

/// A task id: a hash of what makes a task the same task (DESIGN §4.3).
pub fn task_id(agent: &str, input: &RelPath, input_hash: &str, parent: Option<&str>) -> String {
    let mut h = blake3::Hasher::new();
    for part in [agent, input.as_str(), input_hash, parent.unwrap_or("")] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    format!("t-{}", &h.finalize().to_hex()[..12])
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

const JOURNAL_FILE: &str = "journal.jsonl";

pub fn journal_path(ws: &Workspace) -> PathBuf {
    ws.journal_dir().join(JOURNAL_FILE)
}

/// Reads whole entries appended to the journal since the last read.
pub struct Tail {
    file: File,
    path: PathBuf,
    /// Bytes read so far, all whole lines.
    offset: u64,
}

impl Tail {
    /// Reads from the start of the journal (`None` if there is no journal yet).
    pub fn open(ws: &Workspace) -> Result<Option<Tail>> {
        let path = journal_path(ws);
        match File::open(&path) {
            Ok(file) => Ok(Some(Tail {
                file,
                path,
                offset: 0,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("opening the journal {}", path.display())),
        }
    }

    /// New whole entries, and the length of a partial last line (a write in progress,
    /// or a torn one), which is left unread.
    pub fn read_new(&mut self) -> Result<(Vec<Entry>, u64)> {
        let len = self.file.metadata()?.len();
        if len < self.offset {
            self.offset = 0; // cut off by a repairing appender: read again from the start
        }
        if len == self.offset {
            return Ok((Vec::new(), 0));
        }
        let mut bytes = Vec::with_capacity((len - self.offset) as usize);
        let mut reader = &self.file;
        reader.seek(SeekFrom::Start(self.offset))?;
        reader.take(len - self.offset).read_to_end(&mut bytes)?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.offset += whole as u64;
        Ok((
            parse_lines(&bytes[..whole], &self.path),
            (bytes.len() - whole) as u64,
        ))
    }
}

/// Appends records under the journal's exclusive lock.
pub struct Appender {
    file: File,
    tail: Tail,
    next_seq: u64,
    /// Rung after each append; `None` for the daemon's own appender.
    doorbell: Option<PathBuf>,
}

impl Appender {
    pub fn open(ws: &Workspace) -> Result<Appender> {
        std::fs::create_dir_all(ws.journal_dir())
            .with_context(|| format!("creating {}", ws.journal_dir().display()))?;
        let path = journal_path(ws);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("opening the journal {}", path.display()))?;
        let tail = Tail {
            file: file.try_clone()?,
            path,
            offset: 0,
        };
        Ok(Appender {
            file,
            tail,
            next_seq: 1,
            doorbell: Some(ws.doorbell_dir().join("ring")),
        })
    }

    /// An appender that does not ring the doorbell: the daemon's own.
    pub fn quiet(mut self) -> Appender {
        self.doorbell = None;
        self
    }

    /// Appends `records`, returning them as written and, first, any entries other
    /// processes appended since this appender last looked. With `durable`, the records
    /// are on disk (fsync) when this returns.
    pub fn append(
        &mut self,
        records: Vec<Record>,
        durable: bool,
    ) -> Result<(Vec<Entry>, Vec<Entry>)> {
        fs4::FileExt::lock(&self.file)
            .with_context(|| format!("locking the journal {}", self.tail.path.display()))?;
        let result = self.append_locked(records, durable);
        let _ = fs4::FileExt::unlock(&self.file);
        if let (Ok(_), Some(doorbell)) = (&result, &self.doorbell) {
            // Closing a file opened for writing is the event the daemon waits for.
            if let Some(dir) = doorbell.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(doorbell);
        }
        result
    }

    fn append_locked(
        &mut self,
        records: Vec<Record>,
        durable: bool,
    ) -> Result<(Vec<Entry>, Vec<Entry>)> {
        let foreign = self.poll()?;
        if self.tail.file.metadata()?.len() > self.tail.offset {
            // A partial line while we hold the lock: its writer crashed mid-line.
            tracing::warn!(journal = %self.tail.path.display(), "cutting off a torn last line");
            self.file.set_len(self.tail.offset)?;
        }
        let ts = now_rfc3339();
        let mut buf = Vec::with_capacity(records.len() * 160);
        let mut written = Vec::with_capacity(records.len());
        for record in records {
            let entry = Entry {
                seq: self.next_seq,
                ts: ts.clone(),
                record,
            };
            serde_json::to_writer(&mut buf, &entry)?;
            buf.push(b'\n');
            self.next_seq += 1;
            written.push(entry);
        }
        self.file
            .write_all(&buf)
            .with_context(|| format!("appending to the journal {}", self.tail.path.display()))?;
        if durable {
            self.file.sync_data().context("syncing the journal")?;
        }
        self.tail.offset += buf.len() as u64;
        Ok((written, foreign))
    }

    /// Entries other processes appended since the last look, without taking the lock.
    pub fn poll(&mut self) -> Result<Vec<Entry>> {
        let (entries, _) = self.tail.read_new()?;
        if let Some(last) = entries.last() {
            self.next_seq = self.next_seq.max(last.seq + 1);
        }
        Ok(entries)
    }
}

fn parse_lines(bytes: &[u8], path: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => out.push(entry),
            Err(e) => {
                tracing::warn!(journal = %path.display(), line = i + 1, "skipping an unreadable journal line: {e}")
            }
        }
    }
    out
}

/// Reads every whole entry of the journal; a torn last line is ignored.
pub fn read_all(ws: &Workspace) -> Result<Vec<Entry>> {
    let path = journal_path(ws);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading the journal {}", path.display())),
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Ok(parse_lines(&bytes[..whole], &path))
}

/// Where a task stands, as the journal tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Queued,
    Running,
    /// Outputs are being renamed into place; roll forward on restart.
    Committing,
    /// An attempt failed; another is due after the backoff.
    Failed,
    Done,
    Dead,
    Held,
}

impl TaskStatus {
    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Dead)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub id: String,
    pub agent: String,
    pub input: RelPath,
    pub input_hash: String,
    pub parent: Option<String>,
    pub depth: u32,
    pub reason: Reason,
    pub refs: Vec<RelPath>,
    pub status: TaskStatus,
    /// The last attempt started (0: none yet).
    pub attempt: u32,
    /// Failed attempts since the task was last queued; `retries` bounds them.
    pub failures: u32,
    pub pid: Option<u32>,
    pub start_time: Option<u64>,
    pub error: Option<String>,
    pub outputs: Vec<Output>,
    /// Outputs that are delegated briefs (see [`Record::Finished`]).
    pub delegated: Vec<RelPath>,
    pub result: Option<serde_json::Value>,
    pub queued_ts: String,
    pub updated_ts: String,
    pub duration_ms: Option<u64>,
    /// For `failed`: when the next attempt is due.
    #[serde(skip)]
    pub retry_at: Option<SystemTime>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactInfo {
    pub hash: String,
    pub size: u64,
    pub by: String,
    pub task: Option<String>,
    pub ts: String,
}

/// The journal replayed: the latest state of every artifact and task.
#[derive(Debug, Default)]
pub struct State {
    pub artifacts: HashMap<RelPath, ArtifactInfo>,
    pub tasks: HashMap<String, TaskInfo>,
    /// Task ids in the order they were first queued.
    pub order: Vec<String>,
    /// Task id → the tasks queued with it as parent, in order.
    pub children: HashMap<String, Vec<String>>,
    /// Versions already rejected, so a rescan does not report them again.
    pub rejected: HashMap<(RelPath, String), String>,
    pub last_seq: u64,
}

impl State {
    pub fn replay(entries: &[Entry]) -> State {
        let mut state = State::default();
        for entry in entries {
            state.apply(entry);
        }
        state
    }

    pub fn apply(&mut self, entry: &Entry) {
        self.last_seq = self.last_seq.max(entry.seq);
        match &entry.record {
            Record::Artifact {
                path,
                hash,
                size,
                by,
                task,
            } => {
                self.artifacts.insert(
                    path.clone(),
                    ArtifactInfo {
                        hash: hash.clone(),
                        size: *size,
                        by: by.clone(),
                        task: task.clone(),
                        ts: entry.ts.clone(),
                    },
                );
            }
            Record::Queued {
                task,
                agent,
                input,
                input_hash,
                parent,
                depth,
                reason,
                refs,
            } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    // Requeued (`baton retry`): a fresh retry budget.
                    info.status = TaskStatus::Queued;
                    info.failures = 0;
                    info.error = None;
                    info.updated_ts = entry.ts.clone();
                    return;
                }
                self.order.push(task.clone());
                if let Some(parent) = parent {
                    self.children
                        .entry(parent.clone())
                        .or_default()
                        .push(task.clone());
                }
                self.tasks.insert(
                    task.clone(),
                    TaskInfo {
                        id: task.clone(),
                        agent: agent.clone(),
                        input: input.clone(),
                        input_hash: input_hash.clone(),
                        parent: parent.clone(),
                        depth: *depth,
                        reason: *reason,
                        refs: refs.clone(),
                        status: TaskStatus::Queued,
                        attempt: 0,
                        failures: 0,
                        pid: None,
                        start_time: None,
                        error: None,
                        outputs: Vec::new(),
                        delegated: Vec::new(),
                        result: None,
                        queued_ts: entry.ts.clone(),
                        updated_ts: entry.ts.clone(),
                        duration_ms: None,
                        retry_at: None,
                    },
                );
            }
            Record::Started {
                task,
                attempt,
                pid,
                start_time,
            } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    info.status = TaskStatus::Running;
                    info.attempt = *attempt;
                    info.pid = Some(*pid);
                    info.start_time = Some(*start_time);
                    info.updated_ts = entry.ts.clone();
                }
            }
            Record::Committing { task, outputs, .. } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    info.status = TaskStatus::Committing;
                    info.outputs = outputs.clone();
                }
            }
            Record::Finished {
                task,
                status,
                outputs,
                error,
                result,
                retry_in_ms,
                duration_ms,
                delegated,
                ..
            } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    info.status = match status {
                        Status::Done => TaskStatus::Done,
                        Status::Failed => TaskStatus::Failed,
                        Status::Dead => TaskStatus::Dead,
                        Status::Held => TaskStatus::Held,
                    };
                    if matches!(status, Status::Failed | Status::Dead) && info.attempt > 0 {
                        info.failures += 1;
                    }
                    info.outputs = outputs.clone();
                    info.delegated = delegated.clone();
                    info.error = error.clone();
                    info.result = result.clone();
                    info.pid = None;
                    info.duration_ms = Some(*duration_ms);
                    info.updated_ts = entry.ts.clone();
                    info.retry_at = retry_in_ms
                        .and_then(|ms| entry.time().map(|t| t + Duration::from_millis(ms)));
                }
            }
            Record::Approval {
                task,
                decision,
                by,
                note,
            } => {
                if let Some(info) = self.tasks.get_mut(task) {
                    info.status = match decision {
                        Decision::Approved => TaskStatus::Done,
                        Decision::Rejected => TaskStatus::Dead,
                    };
                    if *decision == Decision::Rejected {
                        info.error = Some(match note {
                            Some(note) => format!("rejected by {by}: {note}"),
                            None => format!("rejected by {by}"),
                        });
                    }
                    info.updated_ts = entry.ts.clone();
                }
            }
            Record::Rejected { path, hash, error } => {
                self.rejected.insert(
                    (path.clone(), hash.clone().unwrap_or_default()),
                    error.clone(),
                );
            }
        }
    }

    /// The task `first` and its ancestors, nearest first: the delegation chain. Bounded,
    /// so a corrupt journal with a loop in it cannot hang a reader.
    pub fn ancestors<'a>(
        &'a self,
        first: Option<&'a str>,
    ) -> impl Iterator<Item = &'a TaskInfo> + 'a {
        let mut at = first;
        std::iter::from_fn(move || {
            let task = self.tasks.get(at?)?;
            at = task.parent.as_deref();
            Some(task)
        })
        .take(10_000)
    }

    /// The one task whose id starts with `prefix` (DESIGN §9: any unique prefix).
    pub fn find_task(&self, prefix: &str) -> Result<&TaskInfo> {
        let wanted = prefix.trim();
        let matches: Vec<&TaskInfo> = self
            .order
            .iter()
            .filter(|id| {
                id.starts_with(wanted)
                    || id.strip_prefix("t-").is_some_and(|s| s.starts_with(wanted))
            })
            .filter_map(|id| self.tasks.get(id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => anyhow::bail!("no task matches `{prefix}` (see `baton status` or `baton log`)"),
            many => anyhow::bail!(
                "`{prefix}` matches {} tasks ({}…): give more of the id",
                many.len(),
                many.iter()
                    .take(4)
                    .map(|t| t.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, record: Record) -> Entry {
        Entry {
            seq,
            ts: "2026-11-20T10:00:00.000Z".into(),
            record,
        }
    }

    fn queued(task: &str) -> Record {
        Record::Queued {
            task: task.into(),
            agent: "writer".into(),
            input: RelPath::new("briefs/a.md").unwrap(),
            input_hash: "h".into(),
            parent: None,
            depth: 0,
            reason: Reason::Glob,
            refs: vec![],
        }
    }

    fn finished(task: &str, status: Status) -> Record {
        Record::Finished {
            task: task.into(),
            attempt: 1,
            status,
            exit: Some(1),
            duration_ms: 5,
            outputs: vec![],
            error: None,
            result: None,
            retry_in_ms: Some(2000),
            delegated: vec![],
        }
    }

    #[test]
    fn round_trips_as_one_flat_line() {
        let e = entry(7, queued("t-1"));
        let line = serde_json::to_string(&e).unwrap();
        assert!(
            line.starts_with(r#"{"seq":7,"ts":"2026-11-20T10:00:00.000Z","kind":"task.queued","#),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), e);
    }

    #[test]
    fn replay_counts_failures_and_retry_resets() {
        let started = Record::Started {
            task: "t-1".into(),
            attempt: 1,
            pid: 9,
            start_time: 1,
        };
        let mut s = State::replay(&[
            entry(1, queued("t-1")),
            entry(2, started),
            entry(3, finished("t-1", Status::Failed)),
        ]);
        let t = &s.tasks["t-1"];
        assert_eq!(
            (t.status, t.failures, t.attempt),
            (TaskStatus::Failed, 1, 1)
        );
        assert!(t.retry_at.is_some());
        s.apply(&entry(4, finished("t-1", Status::Dead)));
        assert_eq!(s.tasks["t-1"].status, TaskStatus::Dead);
        s.apply(&entry(5, queued("t-1")));
        let t = &s.tasks["t-1"];
        assert_eq!((t.status, t.failures), (TaskStatus::Queued, 0));
        assert_eq!(s.order, vec!["t-1"]);
    }

    #[test]
    fn task_ids_depend_on_every_part() {
        let p = RelPath::new("briefs/a.md").unwrap();
        let base = task_id("w", &p, "h", None);
        assert!(base.starts_with("t-") && base.len() == 14);
        assert_ne!(base, task_id("x", &p, "h", None));
        assert_ne!(base, task_id("w", &p, "h2", None));
        assert_ne!(base, task_id("w", &p, "h", Some("t-1")));
        assert_eq!(base, task_id("w", &p, "h", None));
    }

    #[test]
    fn unique_prefix_lookup() {
        let s = State::replay(&[entry(1, queued("t-abc1")), entry(2, queued("t-abd2"))]);
        assert_eq!(s.find_task("abc").unwrap().id, "t-abc1");
        assert_eq!(s.find_task("t-abd").unwrap().id, "t-abd2");
        assert!(s.find_task("ab").is_err());
        assert!(s.find_task("zz").is_err());
    }
}
