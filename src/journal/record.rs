//! The journal's records (DESIGN §5): one JSON object per line, `{"seq", "ts", "kind",
//! …}`. The JSON is the contract (other tools read it with `jq`), so every change here
//! keeps it as it is; a unit test pins a sample of each kind.

use std::borrow::Borrow;
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::attribution::{Attribution, Author};
use crate::workspace::RelPath;

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub(crate) ts: String,
    #[serde(flatten)]
    pub(crate) record: Record,
}

impl Entry {
    pub(crate) fn time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.ts).ok()
    }
}

/// A task id, `t-` + 12 hex digits of blake3(agent, path, content hash, parent): what
/// makes a task the same task (DESIGN §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct TaskId(String);

impl TaskId {
    /// The id of `agent` running on version `input_hash` of `input`, set off by the
    /// task `parent` (a task id, or another key that makes the task distinct).
    pub(crate) fn derive(
        agent: &str,
        input: &RelPath,
        input_hash: &str,
        parent: Option<&str>,
    ) -> TaskId {
        let mut h = blake3::Hasher::new();
        for part in [agent, input.as_str(), input_hash, parent.unwrap_or("")] {
            h.update(part.as_bytes());
            h.update(&[0]);
        }
        TaskId(format!("t-{}", &h.finalize().to_hex()[..12]))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Ids as the journal and the agent protocol carry them (`BATON_TASK`, `reply_to`).
impl From<&str> for TaskId {
    fn from(id: &str) -> TaskId {
        TaskId(id.to_string())
    }
}

impl Borrow<str> for TaskId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for TaskId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind")]
pub(crate) enum Record {
    /// A version of an artifact became visible in a stage.
    #[serde(rename = "artifact")]
    Artifact {
        path: RelPath,
        hash: String,
        size: u64,
        /// The agent's name, `human` or `external`.
        by: Author,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<TaskId>,
    },
    #[serde(rename = "task.queued")]
    Queued {
        task: TaskId,
        agent: String,
        input: RelPath,
        input_hash: String,
        parent: Option<TaskId>,
        depth: u32,
        reason: Reason,
        /// The input's front-matter `refs`, resolved to workspace paths.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        refs: Vec<RelPath>,
        /// What the delegator narrowed the task's writes to (`STAGE` or `STAGE/SUB`);
        /// empty: the agent's own `writes`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        writes: Vec<String>,
        /// When it must be over (RFC 3339): asked by its brief, `default_deadline`, or
        /// inherited, never later than its delegator's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<String>,
        /// What the brief asked for, when that was later than its delegator's deadline
        /// and was capped to it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_asked: Option<String>,
        /// What it and everything beneath it may spend: asked by its brief, or
        /// `default_budget`, never more than its delegator's chain has left.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget: Option<f64>,
        /// What the brief asked for, when that was more and was capped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget_asked: Option<f64>,
    },
    #[serde(rename = "task.started")]
    Started {
        task: TaskId,
        attempt: u32,
        pid: u32,
        /// The process's start time in clock ticks since boot (/proc/PID/stat field 22),
        /// so a restarted daemon kills only the group it started, never a reused pid.
        start_time: u64,
        /// How the agent was confined. Journals from before the sandbox say nothing:
        /// their agents ran unconfined.
        #[serde(default)]
        sandbox: Sandbox,
    },
    /// Written (and fsynced) before the first output is renamed into place: a daemon that
    /// crashes mid-commit rolls the commit forward on restart from this list.
    #[serde(rename = "task.committing")]
    Committing {
        task: TaskId,
        attempt: u32,
        outputs: Vec<Output>,
    },
    #[serde(rename = "task.finished")]
    Finished {
        task: TaskId,
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
        task: TaskId,
        decision: Decision,
        by: Author,
        note: Option<String>,
    },
    /// A person ended a queued, retrying, running or escalated task: it is dead.
    #[serde(rename = "task.cancelled")]
    Cancelled { task: TaskId, by: Author },
    /// A dead task whose agent's `fallback` list ends at `human`: it waits for a person
    /// (`baton retry`, `baton cancel` or `baton resolve`).
    #[serde(rename = "task.escalated")]
    Escalated { task: TaskId },
    /// A person supplied an escalated task's outputs (`baton resolve`): they are
    /// committed as `by` in the task's place, and the task is done.
    #[serde(rename = "task.resolved")]
    Resolved {
        task: TaskId,
        by: Author,
        outputs: Vec<Output>,
    },
    /// The daemon runs the config whose `baton.toml` has this content hash: at its
    /// start, and after each edit it applied.
    #[serde(rename = "config")]
    ConfigLoaded { hash: String },
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

/// How an attempt ended, for its `task.finished` record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Finish {
    /// Exit 0, and the outputs were committed.
    Done(Committed),
    /// Exit 0, and outputs bound for an approval stage wait for `baton approve`.
    Held(Committed),
    /// A failed attempt; the next one is due after `retry_in`.
    Failed {
        exit: Option<i32>,
        error: String,
        retry_in: Duration,
    },
    /// A failed attempt after which no other is made.
    Dead { exit: Option<i32>, error: String },
}

/// What a successful attempt left: its outputs, `result.toml`, and its delegations.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Committed {
    pub(crate) outputs: Vec<Output>,
    pub(crate) result: Option<serde_json::Value>,
    pub(crate) delegated: Vec<RelPath>,
}

impl Record {
    /// A version of `path` made visible by `who`.
    pub(crate) fn artifact(path: RelPath, hash: String, size: u64, who: Attribution) -> Record {
        Record::Artifact {
            path,
            hash,
            size,
            by: who.by,
            task: who.task,
        }
    }

    /// `task` queued once more, as it was, for `reason` (`baton retry`).
    pub(crate) fn requeued(task: &super::TaskInfo, reason: Reason) -> Record {
        Record::Queued {
            task: task.id.clone(),
            agent: task.agent.clone(),
            input: task.input.clone(),
            input_hash: task.input_hash.clone(),
            parent: task.parent.clone(),
            depth: task.depth,
            reason,
            refs: task.refs.clone(),
            writes: task.writes.clone(),
            deadline: task.deadline.clone(),
            deadline_asked: None,
            budget: task.budget,
            budget_asked: None,
        }
    }

    /// A failed attempt's record with what its `result.toml` reported (its cost is
    /// charged as a successful one's is).
    pub(crate) fn with_result(mut self, reported: Option<serde_json::Value>) -> Record {
        if let Record::Finished { result, .. } = &mut self {
            if result.is_none() {
                *result = reported;
            }
        }
        self
    }

    /// The end of attempt `attempt` of `task`, after `duration_ms`.
    pub(crate) fn finished(task: &TaskId, attempt: u32, duration_ms: u64, how: Finish) -> Record {
        let (status, exit, error, retry_in_ms, committed) = match how {
            Finish::Done(c) => (Status::Done, Some(0), None, None, c),
            Finish::Held(c) => (Status::Held, Some(0), None, None, c),
            Finish::Failed {
                exit,
                error,
                retry_in,
            } => (
                Status::Failed,
                exit,
                Some(error),
                Some(retry_in.as_millis() as u64),
                Committed::default(),
            ),
            Finish::Dead { exit, error } => {
                (Status::Dead, exit, Some(error), None, Committed::default())
            }
        };
        Record::Finished {
            task: task.clone(),
            attempt,
            status,
            exit,
            duration_ms,
            outputs: committed.outputs,
            error,
            result: committed.result,
            retry_in_ms,
            delegated: committed.delegated,
        }
    }

    /// The task this record is about, if it is about one.
    pub(crate) fn task(&self) -> Option<&TaskId> {
        match self {
            Record::Queued { task, .. }
            | Record::Started { task, .. }
            | Record::Committing { task, .. }
            | Record::Finished { task, .. }
            | Record::Approval { task, .. }
            | Record::Cancelled { task, .. }
            | Record::Escalated { task }
            | Record::Resolved { task, .. } => Some(task),
            Record::Artifact { .. } | Record::Rejected { .. } | Record::ConfigLoaded { .. } => None,
        }
    }
}

/// How an attempt's agent was confined.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Sandbox {
    /// Unconfined: what it wrote is attributed by what it says about itself.
    #[default]
    Off,
    /// Landlock: writes only beneath its attempt's folder, no signals out.
    Landlock,
    /// Landlock as far as an older kernel goes: writes confined, signals maybe not.
    LandlockPartial,
}

impl Sandbox {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Sandbox::Off => "off",
            Sandbox::Landlock => "landlock",
            Sandbox::LandlockPartial => "landlock-partial",
        }
    }

    pub(crate) fn confined(self) -> bool {
        self != Sandbox::Off
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub(crate) struct Output {
    pub(crate) path: RelPath,
    pub(crate) hash: String,
}

/// Why a task was queued.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Reason {
    /// An agent's `on` glob matched the input.
    Glob,
    /// The input's front matter names the agent (`to`).
    To,
    /// A brief delegated by the input's producer (`to` and `reply_to`).
    Delegate,
    /// Everything the parent task delegated is settled: its agent runs again.
    Join,
    /// `baton retry`.
    Retry,
    /// The parent task died with its attempts spent (or a fatal exit): the same input
    /// goes to the next agent of its agent's `fallback` list.
    Fallback,
}

/// How an attempt ended, as journalled.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Done,
    Failed,
    Dead,
    Held,
}

impl Status {
    /// As the journal spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Dead => "dead",
            Status::Held => "held",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Decision {
    Approved,
    Rejected,
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    /// One record of each kind, as the journal has them on disk: reading and writing
    /// each gives back the same line, byte for byte.
    #[test]
    fn every_record_kind_keeps_its_json() {
        let lines = [
            r#"{"seq":1,"ts":"2026-11-20T10:00:00.000Z","kind":"artifact","path":"briefs/a.md","hash":"af12","size":42,"by":"human"}"#,
            r#"{"seq":2,"ts":"2026-11-20T10:00:00.000Z","kind":"artifact","path":"drafts/a.md","hash":"be34","size":7,"by":"writer","task":"t-0123456789ab"}"#,
            r#"{"seq":3,"ts":"2026-11-20T10:00:00.000Z","kind":"task.queued","task":"t-0123456789ab","agent":"writer","input":"briefs/a.md","input_hash":"af12","parent":null,"depth":0,"reason":"glob"}"#,
            r#"{"seq":4,"ts":"2026-11-20T10:00:00.000Z","kind":"task.queued","task":"t-ba9876543210","agent":"editor","input":"briefs/p.md","input_hash":"cd56","parent":"t-0123456789ab","depth":1,"reason":"delegate","refs":["drafts/a.md"]}"#,
            r#"{"seq":5,"ts":"2026-11-20T10:00:00.000Z","kind":"task.started","task":"t-0123456789ab","attempt":1,"pid":4242,"start_time":987654,"sandbox":"landlock"}"#,
            r#"{"seq":6,"ts":"2026-11-20T10:00:00.000Z","kind":"task.committing","task":"t-0123456789ab","attempt":1,"outputs":[{"path":"drafts/a.md","hash":"be34"}]}"#,
            r#"{"seq":7,"ts":"2026-11-20T10:00:00.000Z","kind":"task.finished","task":"t-0123456789ab","attempt":1,"status":"done","exit":0,"duration_ms":12,"outputs":[{"path":"drafts/a.md","hash":"be34"}],"result":{"summary":"ok"},"delegated":["briefs/p.md"]}"#,
            r#"{"seq":8,"ts":"2026-11-20T10:00:00.000Z","kind":"task.finished","task":"t-0123456789ab","attempt":2,"status":"failed","exit":3,"duration_ms":5,"outputs":[],"error":"exited with status 3","retry_in_ms":2000}"#,
            r#"{"seq":9,"ts":"2026-11-20T10:00:00.000Z","kind":"approval","task":"t-0123456789ab","decision":"rejected","by":"human","note":"not yet"}"#,
            r#"{"seq":10,"ts":"2026-11-20T10:00:00.000Z","kind":"rejected","path":"briefs/b.md","hash":"ef78","error":"front matter, line 2, column 6: invalid string"}"#,
            r#"{"seq":11,"ts":"2026-11-20T10:00:00.000Z","kind":"task.cancelled","task":"t-0123456789ab","by":"human"}"#,
            r#"{"seq":12,"ts":"2026-11-20T10:00:00.000Z","kind":"config","hash":"c0ff"}"#,
            r#"{"seq":13,"ts":"2026-11-20T10:00:00.000Z","kind":"task.queued","task":"t-5555aaaa5555","agent":"backup","input":"briefs/a.md","input_hash":"af12","parent":"t-0123456789ab","depth":0,"reason":"fallback"}"#,
            r#"{"seq":14,"ts":"2026-11-20T10:00:00.000Z","kind":"task.escalated","task":"t-5555aaaa5555"}"#,
            r#"{"seq":15,"ts":"2026-11-20T10:00:00.000Z","kind":"task.resolved","task":"t-5555aaaa5555","by":"human","outputs":[{"path":"drafts/a.md","hash":"be34"}]}"#,
        ];
        for line in lines {
            let entry: Entry = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&entry).unwrap(), line);
        }
    }

    #[test]
    fn a_start_journalled_before_the_sandbox_reads_as_unconfined() {
        let line = r#"{"seq":5,"ts":"2026-11-20T10:00:00.000Z","kind":"task.started","task":"t-0123456789ab","attempt":1,"pid":4242,"start_time":987654}"#;
        let entry: Entry = serde_json::from_str(line).unwrap();
        assert!(matches!(
            entry.record,
            Record::Started {
                sandbox: Sandbox::Off,
                ..
            }
        ));
    }

    #[test]
    fn constructors_build_the_records_they_name() {
        let task = TaskId::from("t-0123456789ab");
        let done = Record::finished(
            &task,
            1,
            12,
            Finish::Done(Committed {
                outputs: vec![Output {
                    path: p("drafts/a.md"),
                    hash: "be34".into(),
                }],
                result: None,
                delegated: vec![],
            }),
        );
        assert!(matches!(
            done,
            Record::Finished {
                status: Status::Done,
                exit: Some(0),
                error: None,
                ref outputs,
                ..
            } if outputs.len() == 1
        ));
        let failed = Record::finished(
            &task,
            2,
            5,
            Finish::Failed {
                exit: Some(3),
                error: "exited with status 3".into(),
                retry_in: Duration::from_secs(2),
            },
        );
        assert!(matches!(
            failed,
            Record::Finished {
                status: Status::Failed,
                retry_in_ms: Some(2000),
                ..
            }
        ));
        let artifact = Record::artifact(p("briefs/a.md"), "af12".into(), 42, Attribution::human());
        assert!(matches!(
            artifact,
            Record::Artifact {
                by: Author::Human,
                task: None,
                ..
            }
        ));
        assert_eq!(done.task(), Some(&task));
        assert_eq!(artifact.task(), None);
    }

    #[test]
    fn task_ids_depend_on_every_part() {
        let p = p("briefs/a.md");
        let base = TaskId::derive("w", &p, "h", None);
        assert!(base.as_str().starts_with("t-") && base.as_str().len() == 14);
        assert_ne!(base, TaskId::derive("x", &p, "h", None));
        assert_ne!(base, TaskId::derive("w", &p, "h2", None));
        assert_ne!(base, TaskId::derive("w", &p, "h", Some("t-1")));
        assert_eq!(base, TaskId::derive("w", &p, "h", None));
    }
}
