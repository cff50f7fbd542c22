//! The Landlock sandbox an agent runs in. Its writes are confined to its attempt's
//! folder (the staging tree `$BATON_OUT`, its logs and its private `$TMPDIR`),
//! `/dev/null` and the agent's `sandbox_writes`; it reads and executes anything; it
//! cannot signal a process outside its sandbox (the daemon, other agents) nor reach
//! their abstract UNIX sockets. Everything it does to the workspace then passes through
//! the daemon's commit, which is what makes attribution the daemon's word, not the
//! agent's.
//!
//! Landlock confines the thread that asks, and what it starts inherits the confinement.
//! So the agent's own process asks, between the daemon's `clone` and its exec
//! ([`crate::sys::spawn`]); the daemon's threads are never confined.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};
use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, Scope,
};

use crate::config::Agent;
use crate::journal::Sandbox;
use crate::workspace::Workspace;

/// The ABI the rules are written for: V6 is the first to scope signals and abstract
/// sockets. A kernel offering less gets what it has (the mode says `landlock-partial`).
const TARGET: ABI = ABI::V6;
const TARGET_VERSION: u32 = 6;

/// What the kernel offers, probed once per config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Support {
    /// The Landlock ABI version, `None` without Landlock.
    abi: Option<u32>,
}

impl Support {
    pub(crate) fn probe() -> Support {
        // Debug builds only: tests pose as a kernel without Landlock.
        if cfg!(debug_assertions) {
            if let Ok(abi) = std::env::var("BATON_TEST_LANDLOCK_ABI") {
                return Support {
                    abi: abi.parse().ok().filter(|&v| v > 0),
                };
            }
        }
        Support {
            abi: crate::sys::landlock_abi(),
        }
    }

    /// The mode `agent` runs in, or why the daemon cannot run it as configured.
    pub(crate) fn mode_of(&self, agent: &Agent) -> Result<Sandbox> {
        match (agent.sandbox, self.abi) {
            (Some(false), _) => Ok(Sandbox::Off),
            (Some(true), None) => bail!(
                "agent `{}` has `sandbox = true`, but this kernel offers no Landlock (it needs \
                 Linux 5.13 or later with Landlock enabled, e.g. `lsm=landlock,…` on the kernel \
                 command line); set `sandbox = false` in baton.toml to run it unconfined",
                agent.name
            ),
            (None, None) => {
                static SAID: AtomicBool = AtomicBool::new(false);
                if !SAID.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "this kernel offers no Landlock: agents run unconfined, and what they \
                         write is attributed by what they say about themselves"
                    );
                }
                Ok(Sandbox::Off)
            }
            (_, Some(abi)) if abi >= TARGET_VERSION => Ok(Sandbox::Landlock),
            (_, Some(_)) => Ok(Sandbox::LandlockPartial),
        }
    }
}

/// The paths every sandboxed agent's rules name, opened once per config.
pub(crate) struct Grants {
    /// `/`, for reading and executing.
    root: PathFd,
    /// `/dev/null`, writable: `2>/dev/null` is everywhere in scripts.
    dev_null: PathFd,
}

impl Grants {
    pub(crate) fn open() -> Result<Grants> {
        Ok(Grants {
            root: PathFd::new("/").context("opening / for the sandbox")?,
            dev_null: PathFd::new("/dev/null").context("opening /dev/null for the sandbox")?,
        })
    }

    /// The ruleset for one attempt of `agent`: write beneath `attempt_dir`, the
    /// workspace's lock folder (for `baton lock` and `baton read`, which lock a file
    /// there), `/dev/null` and the agent's `sandbox_writes` (those that exist); read
    /// everywhere. Also open for writing (not make, remove or rename): the search index's
    /// meta lock, which tantivy takes to open a reader, so `baton search` and the MCP
    /// `search_files` work inside the sandbox.
    pub(crate) fn ruleset(
        &self,
        agent: &Agent,
        attempt_dir: &Path,
        ws: &Workspace,
    ) -> Result<RulesetCreated> {
        let all = AccessFs::from_all(TARGET);
        let attempt = open_grant(attempt_dir)?;
        let locks = open_grant(&ws.locks_dir())?;
        let mut ruleset = self
            .reading()?
            .add_rule(PathBeneath::new(attempt, all))?
            .add_rule(PathBeneath::new(locks, all))?;
        if let Some(lock) = index_meta_lock(ws) {
            let rights = AccessFs::ReadFile | AccessFs::WriteFile;
            ruleset = ruleset.add_rule(PathBeneath::new(lock, rights))?;
        }
        grant_sandbox_writes(ruleset, agent)
    }
}

impl Grants {
    /// Read and execute everywhere, write `/dev/null`; signals and abstract sockets
    /// scoped: what every confined process starts from.
    fn reading(&self) -> Result<RulesetCreated> {
        let all = AccessFs::from_all(TARGET);
        Ok(Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(all)?
            .scope(Scope::from_all(TARGET))?
            .create()?
            .add_rule(PathBeneath::new(&self.root, AccessFs::from_read(TARGET)))?
            .add_rule(PathBeneath::new(&self.dev_null, all))?)
    }

    /// The ruleset of one of `agent`'s output checks (`checks`): it reads everything and
    /// writes only its private `tmp`, `/dev/null` and the agent's `sandbox_writes` (state
    /// outside the workspace), so it can judge the staged outputs but never change them.
    pub(crate) fn check_ruleset(&self, agent: &Agent, tmp: &Path) -> Result<RulesetCreated> {
        let tmp = open_grant(tmp)?;
        let ruleset = self
            .reading()?
            .add_rule(PathBeneath::new(tmp, AccessFs::from_all(TARGET)))?;
        grant_sandbox_writes(ruleset, agent)
    }
}

/// `ruleset` with write access to `agent`'s `sandbox_writes` (those that exist).
fn grant_sandbox_writes(mut ruleset: RulesetCreated, agent: &Agent) -> Result<RulesetCreated> {
    let all = AccessFs::from_all(TARGET);
    for extra in &agent.sandbox_writes {
        match open_grant(extra) {
            Ok(fd) => ruleset = ruleset.add_rule(PathBeneath::new(fd, all))?,
            Err(e) => tracing::warn!(agent = agent.name, "sandbox_writes: {e:#}; not granted"),
        }
    }
    Ok(ruleset)
}

/// The `sandbox_writes` entries of `agent` that do not exist, made as folders, so the
/// agent can write there (a rule names an open file, so a missing path grants nothing).
pub(crate) fn make_sandbox_writes(agent: &Agent) {
    for path in &agent.sandbox_writes {
        if std::fs::symlink_metadata(path).is_err() {
            match std::fs::create_dir_all(path) {
                Ok(()) => tracing::info!(
                    agent = agent.name,
                    "made {} for its sandbox_writes",
                    path.display()
                ),
                Err(e) => tracing::warn!(
                    agent = agent.name,
                    "sandbox_writes: cannot make {}: {e}",
                    path.display()
                ),
            }
        }
    }
}

/// The search index's `.tantivy-meta.lock`, made if missing (it is only ever a lock: its
/// content is nothing). `None` if there is no index folder to put it in.
fn index_meta_lock(ws: &Workspace) -> Option<PathFd> {
    let path = crate::index::store::index_dir(ws).join(".tantivy-meta.lock");
    if !path.exists() {
        let made = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path);
        if let Err(e) = made {
            tracing::debug!("cannot make {}: {e}", path.display());
            return None;
        }
    }
    PathFd::new(&path).ok()
}

fn open_grant(path: &Path) -> Result<PathFd> {
    PathFd::new(path).with_context(|| format!("opening {}", path.display()))
}
