//! The daemon (`baton run`): watches the stages, dispatches agents, commits their
//! outputs. See ARCHITECTURE.md for the tasks, channels and shutdown order.
//!
//! - [`watcher`]: notify events → hints, never blocking notify's thread.
//! - [`scheduler`]: the one task that decides: settle timers, queues, retries, shutdown.
//! - [`ingest`] and [`reconcile`]: an artifact arriving; listing the stages.
//! - [`runner`]: one attempt of one agent, in its own process group.
//! - [`commit`]: outputs made visible atomically, or the failure recorded.
//! - [`process`]: process-group signalling.

pub mod commit;
pub mod ingest;
pub mod process;
pub mod reconcile;
pub mod runner;
pub mod scheduler;
pub mod spare;
pub mod watcher;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{Config, Run};
use crate::index::store::author_of;
use crate::index::writer::{IndexHandle, Who};
use crate::journal::{Record, TaskInfo, TaskStatus};
use crate::ledger::Ledger;
use crate::workspace::Workspace;

/// What every part of the daemon shares.
pub struct Ctx {
    pub ws: Workspace,
    pub cfg: Config,
    /// The journal and its state; held for microseconds.
    pub ledger: Arc<Mutex<Ledger>>,
    /// The search index's writer thread.
    pub index: IndexHandle,
    /// The running `baton` binary, for agents that call `baton delegate` and friends.
    pub baton_bin: PathBuf,
    /// `PATH` for agents: the baton binary's folder first.
    pub agent_path: OsString,
    /// Bare program names resolved on `agent_path` at start.
    programs: HashMap<String, PathBuf>,
    /// Attempt folders made ahead of need.
    pub spares: Arc<spare::Spares>,
}

impl Ctx {
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The absolute path to start `program` by: relative to the root if it holds a
    /// `/`, else found on the agents' `PATH`. Resolving it here, not in the child, lets
    /// std start the agent with posix_spawn (vfork) instead of forking the daemon,
    /// which it must do when the child's `PATH` differs from ours.
    pub fn program(&self, program: &str) -> PathBuf {
        if program.contains('/') {
            return self.ws.root.join(program);
        }
        self.programs
            .get(program)
            .cloned()
            .or_else(|| find_on_path(program, &self.agent_path))
            .unwrap_or_else(|| PathBuf::from(program))
    }

    /// A context for committing outside the daemon (`baton approve`): it runs no
    /// agents and feeds no index writer, and its appends ring the daemon's doorbell.
    pub fn offline(ws: Workspace, cfg: Config) -> Result<Ctx> {
        let ledger = Ledger::open_ringing(&ws)?;
        Ok(Ctx {
            ws,
            cfg,
            ledger: Arc::new(Mutex::new(ledger)),
            index: IndexHandle::none(),
            baton_bin: std::env::current_exe().unwrap_or_default(),
            agent_path: std::env::var_os("PATH").unwrap_or_default(),
            programs: HashMap::new(),
            spares: spare::Spares::none(),
        })
    }

    /// Appends `records`; with `durable`, returns only once they are on disk. The
    /// fsync happens after the ledger's lock is released.
    pub fn append(&self, records: Vec<Record>, durable: bool) -> Result<()> {
        let syncer = {
            let mut ledger = self.ledger();
            ledger.append(records)?;
            ledger.syncer()
        };
        if durable {
            syncer.sync()?;
        }
        Ok(())
    }

    /// The task's ancestors, nearest first, for task.json.
    pub fn chain(&self, task: &TaskInfo) -> Vec<serde_json::Value> {
        let ledger = self.ledger();
        ledger
            .state
            .ancestors(task.parent.as_deref())
            .map(|t| serde_json::json!({ "task": t.id, "agent": t.agent, "input": t.input }))
            .collect()
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub done: usize,
    pub dead: usize,
    pub held: usize,
    pub failed_attempts: usize,
}

pub struct RunOptions {
    /// Exit when nothing is pending instead of watching forever.
    pub once: bool,
}

/// Held by the one running daemon of a workspace (DESIGN §4.5); released on exit or
/// crash, since it is an flock.
pub struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    pub fn acquire(ws: &Workspace) -> Result<DaemonLock> {
        let path = ws.daemon_lock_path();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let pid = read_pid(&mut file).map_or("unknown".into(), |p| p.to_string());
                bail!(
                    "a daemon is already running on {} (pid {pid}); stop it first, or use `baton status`",
                    ws.root.display()
                );
            }
            Err(fs4::TryLockError::Error(e)) => return Err(e).context("locking the daemon lock"),
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        Ok(DaemonLock { _file: file })
    }
}

/// The pid of the daemon running on `ws`, if one is.
pub fn running_daemon(ws: &Workspace) -> Option<u32> {
    let mut file = File::open(ws.daemon_lock_path()).ok()?;
    match fs4::FileExt::try_lock_shared(&file) {
        Ok(()) => None,
        Err(_) => read_pid(&mut file),
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Runs the daemon until `shutdown` resolves, or with `once` until no work is pending.
pub async fn run(
    ws: Workspace,
    cfg: Config,
    opts: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary> {
    ws.ensure_state_dirs()?;
    let _lock = DaemonLock::acquire(&ws)?;
    for stage in &cfg.stages {
        let dir = ws.root.join(stage);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the stage folder {}", dir.display()))?;
    }
    let baton_bin = std::env::current_exe().context("locating the baton binary")?;
    let mut agent_path = OsString::new();
    if let Some(dir) = baton_bin.parent() {
        agent_path.push(dir);
        agent_path.push(":");
    }
    agent_path
        .push(std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()));
    let mut programs = HashMap::new();
    let bare = cfg.agents.values().map(|a| match &a.run {
        Run::Argv(argv) => argv[0].as_str(),
        Run::Shell(_) => "sh",
    });
    for program in bare.filter(|p| !p.contains('/') && !p.contains('{')) {
        if let Some(path) = find_on_path(program, &agent_path) {
            programs.insert(program.to_string(), path);
        }
    }
    let ledger = Arc::new(Mutex::new(Ledger::open(&ws)?));
    let who_ledger = ledger.clone();
    let who: Who = Arc::new(move |path, hash| {
        let ledger = who_ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        author_of(&ledger.state, path, hash)
    });
    let (index, index_thread) =
        crate::index::writer::spawn(ws.clone(), cfg.stages.clone(), cfg.max_file_size, who);
    let spares = spare::Spares::open(&ws.state_dir().join("spare"))?;
    let ctx = Arc::new(Ctx {
        ws,
        cfg,
        ledger,
        index,
        baton_bin,
        agent_path,
        programs,
        spares,
    });

    let recovery_ctx = ctx.clone();
    tokio::task::spawn_blocking(move || recover(&recovery_ctx)).await??;

    // Watch before the first scan, so nothing falls between the two.
    let (hint_tx, hint_rx) = mpsc::channel(8192);
    let flags = Arc::new(watcher::Flags::default());
    let watcher = watcher::Watcher::start(&ctx.ws, &ctx.cfg, hint_tx, flags.clone())?;
    tracing::info!(workspace = %ctx.ws.root.display(), agents = ctx.cfg.agents.len(), "daemon started");
    let summary = scheduler::Scheduler::new(ctx.clone(), watcher, flags, hint_rx, opts.once)
        .run(shutdown)
        .await;
    // Records that were not synced one by one (no commit depended on them) reach the
    // disk now, not whenever the kernel gets to them.
    ctx.ledger().syncer().sync()?;
    ctx.index.stop();
    let _ = tokio::task::spawn_blocking(move || index_thread.join()).await;
    Ok(summary)
}

/// The first executable file named `program` in the folders of `path`.
fn find_on_path(program: &str, path: &OsString) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Cleans up after a daemon that died: stops the process groups of agents it left
/// running (recognised by pid and start time) and finishes interrupted commits. The
/// interrupted tasks themselves are then queued again by the scheduler.
fn recover(ctx: &Ctx) -> Result<()> {
    // The first spare attempt folders are made now, before the daemon watches anything,
    // so the first briefs do not race their making.
    if let Err(e) = ctx.spares.fill() {
        tracing::debug!("making spare attempt folders: {e:#}");
    }
    let stale: Vec<TaskInfo> = {
        let ledger = ctx.ledger();
        ledger
            .state
            .tasks
            .values()
            .filter(|t| matches!(t.status, TaskStatus::Running | TaskStatus::Committing))
            .cloned()
            .collect()
    };
    for task in &stale {
        if let (Some(pid), Some(start)) = (task.pid, task.start_time) {
            process::stop_stale_group(pid, start);
        }
    }
    for task in stale.iter().filter(|t| t.status == TaskStatus::Committing) {
        if !commit::roll_forward(ctx, task)? {
            tracing::warn!(task = %task.id, "an interrupted commit's staged files are gone; the task runs again");
        }
    }
    Ok(())
}
