//! Test helpers for the pure core: a journal built record by record into a [`State`].

use crate::journal::{
    Attribution, Committed, Entry, Finish, Output, Reason, Record, State, Status, TaskId,
};
use crate::workspace::RelPath;

/// Records applied to a [`State`] one by one, with growing `seq`s.
pub(crate) struct JournalBuilder {
    pub(crate) state: State,
}

impl JournalBuilder {
    pub(crate) fn new() -> JournalBuilder {
        JournalBuilder {
            state: State::default(),
        }
    }

    pub(crate) fn push(&mut self, record: Record) {
        let seq = self.state.last_seq + 1;
        self.state.apply(&Entry {
            seq,
            ts: "2026-11-21T10:00:00.000Z".into(),
            record,
        });
    }

    pub(crate) fn push_all(&mut self, records: Vec<Record>) {
        for r in records {
            self.push(r);
        }
    }

    /// Queues `task` of `agent` on `input` (content hash `h-INPUT`): a delegation when
    /// it has a parent, else a glob match.
    pub(crate) fn queue(&mut self, task: &str, agent: &str, input: &str, parent: Option<&str>) {
        self.push(Record::Queued {
            task: TaskId::from(task),
            agent: agent.into(),
            input: RelPath::new(input).unwrap(),
            input_hash: format!("h-{input}"),
            parent: parent.map(TaskId::from),
            depth: 0,
            reason: if parent.is_some() {
                Reason::Delegate
            } else {
                Reason::Glob
            },
            refs: Vec::new(),
            writes: Vec::new(),
            deadline: None,
            deadline_asked: None,
            budget: None,
            budget_asked: None,
        });
    }

    pub(crate) fn start(&mut self, task: &str, attempt: u32) {
        self.push(Record::Started {
            task: TaskId::from(task),
            attempt,
            pid: 4242,
            start_time: 1,
            sandbox: Default::default(),
        });
    }

    /// Ends attempt 1 of `task` with `status`, its outputs and delegated briefs.
    pub(crate) fn finish(
        &mut self,
        task: &str,
        status: Status,
        outputs: &[&str],
        delegated: &[&str],
    ) {
        let committed = Committed {
            outputs: outputs
                .iter()
                .map(|p| Output {
                    path: RelPath::new(p).unwrap(),
                    hash: format!("h-{p}"),
                })
                .collect(),
            result: None,
            delegated: delegated.iter().map(|p| RelPath::new(p).unwrap()).collect(),
        };
        let how = match status {
            Status::Done => Finish::Done(committed),
            Status::Held => Finish::Held(committed),
            Status::Failed => Finish::Failed {
                exit: Some(1),
                error: "failed".into(),
                retry_in: std::time::Duration::from_secs(2),
            },
            Status::Dead => Finish::Dead {
                exit: Some(1),
                error: "dead".into(),
            },
        };
        self.push(Record::finished(&TaskId::from(task), 1, 1, how));
    }

    /// A failed attempt of `task`: retried after `retry_in_ms`, or dead without it.
    pub(crate) fn fail(&mut self, task: &str, attempt: u32, retry_in_ms: Option<u64>) {
        let how = match retry_in_ms {
            Some(ms) => Finish::Failed {
                exit: Some(1),
                error: "exited with status 1".into(),
                retry_in: std::time::Duration::from_millis(ms),
            },
            None => Finish::Dead {
                exit: Some(1),
                error: "exited with status 1".into(),
            },
        };
        self.push(Record::finished(&TaskId::from(task), attempt, 5, how));
    }

    pub(crate) fn artifact(&mut self, path: &str, hash: &str, who: Attribution) {
        self.push(Record::artifact(
            RelPath::new(path).unwrap(),
            hash.into(),
            1,
            who,
        ));
    }
}
