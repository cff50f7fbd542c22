//! Who a command acts as. Inside a task, the agent protocol's environment (DESIGN §3:
//! `BATON_TASK`, `BATON_AGENT`, `BATON_OUT`) names the task and its agent; outside
//! one, a command acts for a person.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::{Agent, Config};
use crate::error::usage;
use crate::journal::TaskId;

/// The task a command runs inside, as its environment says.
#[derive(Debug, Clone)]
pub(crate) struct InTask {
    pub(crate) task: TaskId,
    /// `BATON_AGENT`, as set (empty when unset).
    agent: String,
    /// `BATON_OUT`: the attempt's staging tree, if set.
    out: Option<PathBuf>,
}

impl InTask {
    /// The task of the environment, or `None` outside a task (`BATON_TASK` unset or
    /// empty).
    pub(crate) fn from_env() -> Option<InTask> {
        let task = std::env::var("BATON_TASK").ok().filter(|t| !t.is_empty())?;
        Some(InTask {
            task: TaskId::from(task.as_str()),
            agent: std::env::var("BATON_AGENT").unwrap_or_default(),
            out: std::env::var_os("BATON_OUT")
                .filter(|o| !o.is_empty())
                .map(PathBuf::from),
        })
    }

    /// The agent the task runs, which must be one of `cfg`'s.
    pub(crate) fn agent<'c>(&self, cfg: &'c Config) -> Result<&'c Agent> {
        cfg.agents.get(&self.agent).ok_or_else(|| {
            usage!(
                "BATON_TASK is set ({}) but BATON_AGENT ({:?}) names no agent of baton.toml: \
                 run inside a task, or unset BATON_TASK",
                self.task,
                self.agent
            )
        })
    }

    /// The agent's name as the environment gives it, known to `cfg` or not.
    pub(crate) fn agent_name(&self) -> &str {
        &self.agent
    }

    /// The attempt's staging tree.
    pub(crate) fn out(&self) -> Result<&Path> {
        self.out.as_deref().ok_or_else(|| {
            usage!(
                "BATON_TASK is set ({}) but BATON_OUT is not: run inside a task, or unset BATON_TASK",
                self.task
            )
        })
    }
}
