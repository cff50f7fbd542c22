//! An attempt's folder, `.baton/runs/<task>/<attempt>/` (DESIGN §1): `out/` (the
//! staging tree), `task.json`, `stdout.log` and `stderr.log`, all new.
//!
//! Each attempt gets a folder no earlier one used, so a stray writer of an earlier
//! attempt can never leak into this one: a folder left by an attempt the journal never
//! heard of (a crash between making it and journalling `task.started`) is skipped.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::catalog::Card;
use crate::config::{Agent, Config};
use crate::journal::{ChainLink, History, Reason, Sandbox, TaskId, TaskInfo};
use crate::workspace::{RelPath, Workspace};

/// A claimed attempt folder, its logs open for the agent.
pub(crate) struct Attempt {
    /// The attempt's number: the one asked for, or a later one if that was on disk.
    pub(crate) number: u32,
    /// The attempt's folder, `.baton/runs/<task>/<attempt>/`.
    pub(crate) dir: PathBuf,
    /// `out/`: the staging tree, `$BATON_OUT`.
    pub(crate) out: PathBuf,
    /// `tmp/`: the agent's private temp folder, `$TMPDIR`, removed once it ends.
    pub(crate) tmp: PathBuf,
    /// `task.json`, `$BATON_TASK_FILE`.
    pub(crate) task_file: PathBuf,
    pub(crate) stdout: File,
    pub(crate) stderr: File,
}

impl Attempt {
    /// Claims the folder of attempt `number` of `task`, or of the first number after
    /// it that has none, and makes `out/` and the logs in it. `task.json` is written
    /// by [`Attempt::write_task_file`].
    pub(crate) fn claim(ws: &Workspace, task: &TaskId, number: u32) -> Result<Attempt> {
        let task_dir = ws.runs_dir().join(task.as_str());
        std::fs::create_dir_all(&task_dir)
            .with_context(|| format!("creating {}", task_dir.display()))?;
        let mut number = number;
        let dir = loop {
            let dir = ws.attempt_dir(task.as_str(), number);
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => number += 1,
                Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
            }
        };
        let out = dir.join("out");
        let tmp = dir.join("tmp");
        for made in [&out, &tmp] {
            std::fs::create_dir(made).with_context(|| format!("creating {}", made.display()))?;
        }
        let create = |name: &str| {
            let path = dir.join(name);
            File::create_new(&path).with_context(|| format!("creating {}", path.display()))
        };
        Ok(Attempt {
            number,
            stdout: create("stdout.log")?,
            stderr: create("stderr.log")?,
            task_file: dir.join("task.json"),
            out,
            tmp,
            dir,
        })
    }

    /// The first line of `stderr.log`: how the agent is confined, and where it may
    /// write when it is.
    pub(crate) fn say_sandbox(&mut self, sandbox: Sandbox, agent: &Agent) -> Result<()> {
        let line = match sandbox {
            Sandbox::Off => "baton: sandbox off: this agent runs unconfined\n".to_string(),
            confined => {
                let mut writable = vec!["$BATON_OUT".to_string(), "$TMPDIR".to_string()];
                writable.extend(agent.sandbox_writes.iter().map(|p| p.display().to_string()));
                format!(
                    "baton: sandbox {}: writes only to {} and /dev/null\n",
                    confined.as_str(),
                    writable.join(", ")
                )
            }
        };
        self.stderr
            .write_all(line.as_bytes())
            .context("writing stderr.log")
    }

    pub(crate) fn write_task_file(&self, doc: &TaskFile) -> Result<()> {
        File::create_new(&self.task_file)
            .and_then(|mut f| f.write_all(&serde_json::to_vec_pretty(doc)?))
            .with_context(|| format!("writing {}", self.task_file.display()))
    }
}

/// `task.json`: the protocol's environment and what lists cannot carry (DESIGN §3).
#[derive(Debug, Serialize)]
pub(crate) struct TaskFile<'a> {
    agent: &'a str,
    /// The agents this task may delegate to, described (DESIGN §7, issue 15).
    agents: Vec<Card<'a>>,
    attempt: u32,
    /// The task's delegation chain, nearest first.
    chain: Vec<ChainLink>,
    /// For a join: what each delegated brief's tasks did.
    children: Vec<serde_json::Value>,
    depth: u32,
    /// For a fallback: the dead tasks whose input it took over, nearest first, each with
    /// its agent, error and attempts.
    fallback_of: Vec<serde_json::Value>,
    /// `BATON_BUDGET`: what the task's chain has left to spend, if it is bounded.
    budget: Option<f64>,
    /// `BATON_DEADLINE`: when the task must be over (RFC 3339), if ever.
    deadline: Option<&'a str>,
    /// `BATON_FEEDBACK`: why the earlier attempts failed, if any did.
    feedback: Option<PathBuf>,
    input: &'a RelPath,
    input_hash: &'a str,
    join: bool,
    out: &'a Path,
    parent: Option<&'a TaskId>,
    reason: Reason,
    refs: &'a [RelPath],
    task: &'a TaskId,
    workspace: &'a Path,
    /// What this task may write: the narrower `writes` its delegator gave it, else its
    /// agent's stages.
    writes: &'a [String],
}

impl<'a> TaskFile<'a> {
    pub(crate) fn new(
        ws: &'a Workspace,
        cfg: &'a Config,
        state: &dyn History,
        task: &'a TaskInfo,
        attempt: &'a Attempt,
    ) -> Result<TaskFile<'a>> {
        let join = task.reason == Reason::Join;
        Ok(TaskFile {
            agent: &task.agent,
            agents: crate::catalog::reachable_from(cfg, &task.agent),
            attempt: attempt.number,
            chain: state.chain(task.parent.as_ref())?,
            children: if join {
                crate::join::report(state, task)?
            } else {
                Vec::new()
            },
            depth: task.depth,
            fallback_of: crate::fallback::failures_before(state, task)?,
            budget: None,
            deadline: task.deadline.as_deref(),
            feedback: Some(ws.feedback_file(task.id.as_str())).filter(|f| f.is_file()),
            input: &task.input,
            input_hash: &task.input_hash,
            join,
            out: &attempt.out,
            parent: task.parent.as_ref(),
            reason: task.reason,
            refs: &task.refs,
            task: &task.id,
            workspace: &ws.root,
            writes: match (&task.writes[..], cfg.agents.get(&task.agent)) {
                ([], Some(agent)) => &agent.writes,
                (narrowed, _) => narrowed,
            },
        })
    }
}

impl TaskFile<'_> {
    /// With what the task's chain has left to spend.
    pub(crate) fn with_budget(mut self, budget: Option<f64>) -> Self {
        self.budget = budget;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_folder_left_on_disk_is_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        let task = TaskId::from("t-1");
        std::fs::create_dir_all(ws.attempt_dir("t-1", 1)).unwrap();
        let attempt = Attempt::claim(&ws, &task, 1).unwrap();
        assert_eq!(attempt.number, 2);
        let dir = ws.attempt_dir("t-1", 2);
        assert_eq!(attempt.out, dir.join("out"));
        assert!(dir.join("out").is_dir() && dir.join("stdout.log").is_file());
        assert!(dir.join("stderr.log").is_file());
        assert_eq!(Attempt::claim(&ws, &task, 2).unwrap().number, 3);
    }
}
