//! The manifest: an append-only JSON Lines journal of everything that happened
//! (DESIGN §5): its records here, reading and appending in [`file`], and its replay
//! into [`State`] in [`state`].

mod file;
mod state;

pub use file::{Appender, Tail, parse_all, read_all};
pub use state::{ArtifactInfo, State, TaskInfo, TaskStatus};

use std::path::PathBuf;
use std::time::SystemTime;

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
    fn an_appender_opened_at_the_end_goes_on_from_the_last_seq() {
        use std::io::Write;
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        // Over several 64 KiB blocks, so the backward read crosses their boundaries.
        let many: Vec<Record> = (0..3000).map(|i| queued(&format!("t-{i}"))).collect();
        Appender::open(&ws).unwrap().append(many, false).unwrap();
        // An unreadable line, then a torn one (a writer that died mid-line).
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(journal_path(&ws))
            .unwrap();
        f.write_all(b"{not json}\n{\"seq\":777777").unwrap();
        drop(f);

        let mut appender = Appender::open_at_end(&ws).unwrap();
        let (written, _) = appender.append(vec![queued("t-last")], false).unwrap();
        assert_eq!(written[0].seq, 3001);
        let all = read_all(&ws).unwrap();
        assert_eq!(all.len(), 3001);
        assert_eq!(all.last().unwrap().seq, 3001);
        let text = std::fs::read_to_string(journal_path(&ws)).unwrap();
        assert!(!text.contains("777777"), "the torn line is cut off");

        // An empty journal starts at 1.
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        let mut appender = Appender::open_at_end(&ws).unwrap();
        let (written, _) = appender.append(vec![queued("t-1")], false).unwrap();
        assert_eq!(written[0].seq, 1);
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
