//! Who a command acts as. Inside a task, the agent protocol's environment (DESIGN §3:
//! `BATON_TASK`, `BATON_AGENT`, `BATON_OUT`) names the task and its agent; outside
//! one, a command acts for a person.

use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::config::{Agent, Config};
use crate::error::usage;
use crate::journal::TaskId;
use crate::workspace::RelPath;

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

    /// Notes that the task's write of `target` starts from version `base` (`None`: no
    /// file there), unless an earlier write noted one: the commit refuses the write if
    /// `target` has changed since (a stale write), so two agents updating one artifact
    /// never silently undo each other.
    pub(crate) fn note_base(&self, target: &RelPath, base: Option<&str>) -> Result<()> {
        let file = bases_dir(self.out()?).join(target.as_str());
        if file.exists() {
            return Ok(());
        }
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&file, base.unwrap_or_default())
            .with_context(|| format!("writing {}", file.display()))
    }

    /// Writes `content` as `target` into the attempt's staging tree, where the daemon
    /// commits it (and attributes it) once the task succeeds: first under a hidden
    /// temporary name beside it, then renamed, so a commit never takes half of it.
    /// The bytes written.
    pub(crate) fn stage(&self, target: &RelPath, content: &mut impl Read) -> Result<u64> {
        let file = self.out()?.join(target.as_str());
        let dir = file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut out = std::fs::File::create_new(&temp)?;
            let n = std::io::copy(content, &mut out)?;
            out.flush()?;
            std::fs::rename(&temp, &file)?;
            Ok::<_, std::io::Error>(n)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.with_context(|| format!("staging {}", file.display()))
    }
}

/// Where an attempt keeps the versions its `baton write`s started from: `bases/` beside
/// its staging tree `out/`, one file per path holding the hash (empty: no file).
pub(crate) fn bases_dir(out: &Path) -> PathBuf {
    out.with_file_name("bases")
}
