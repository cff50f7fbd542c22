//! The daemon (`baton run`): watches the stages, dispatches agents, commits their
//! outputs. [`run`] only wires the parts; ARCHITECTURE.md tells the data's path through
//! them.
//!
//! - [`context`]: what every part shares ([`context::Ctx`]).
//! - [`recover`]: cleaning up after a daemon that died.
//! - [`watcher`]: notify events → hints, never blocking notify's thread.
//! - [`supervisor`]: the one loop; it applies the [`scheduler`]'s decisions, kept in
//!   [`deadlines`] and [`queues`].
//! - [`ingest`]: an artifact arriving, or a walk of the stages.
//! - [`runner`]: one attempt of one agent in its folder ([`attempt`]), started by the
//!   [`launch`]er, its output [`capture`]d, stopped by [`process`], journalled by
//!   [`settle`].

mod attempt;
mod capture;
mod checks;
mod child;
mod context;
mod deadlines;
mod ingest;
mod launch;
mod process;
mod queues;
mod reconcile;
mod recover;
mod runner;
mod sandbox;
mod scheduler;
mod settle;
mod supervisor;
mod watcher;

pub(crate) use scheduler::{Summary, Until};

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::index::writer::Who;
use crate::journal::{Attribution, Durability, History, Record};
use crate::ledger::{Ledger, SharedLedger};
use crate::workspace::Workspace;
use context::Ctx;

/// Hints waiting for the scheduler; past this the watcher raises the overflow flag
/// instead, which means a full rescan, never a lost file.
const HINTS: usize = 8192;

/// Runs the daemon on `ws` until `shutdown` resolves, or, with [`Until::Idle`], until no
/// work is pending.
pub(crate) async fn run(
    ws: Workspace,
    cfg: Config,
    until: Until,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary> {
    ws.ensure_state_dirs()?;
    let _lock = crate::pidfile::DaemonLock::acquire(&ws)?;
    for stage in &cfg.stages {
        let dir = ws.root.join(stage);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the stage folder {}", dir.display()))?;
    }
    let launcher = launch::Launcher::new(&cfg)?;
    let setup = context::Setup {
        cfg,
        launcher,
        hash: config_hash(&ws),
    };
    // Before the store is opened: it would rebuild itself from the empty journal.
    if crate::journal::segments::list(&ws.journal_dir())?.is_empty() {
        crate::journal::refuse_a_lost_journal(&ws)?;
    }
    let ledger = SharedLedger::new(Ledger::open(&ws, setup.cfg.journal.segment_size)?);
    let who_ledger = ledger.clone();
    let who: Who = Arc::new(move |path, hash| {
        who_ledger
            .lock()
            .attribution_of(path, hash)
            .unwrap_or_else(|e| {
                tracing::error!(%path, "looking up who wrote a version: {e:#}");
                Attribution::external()
            })
    });
    let (index, index_thread) = crate::index::writer::spawn(
        ws.clone(),
        setup.cfg.stages.clone(),
        setup.cfg.max_file_size,
        who,
    )?;
    let ctx = Arc::new(Ctx::new(ws, setup, ledger, index));

    if let Some(compressor) = &ctx.compressor {
        compressor.nudge(); // what was sealed while no daemon ran
    }
    let recovering = ctx.clone();
    tokio::task::spawn_blocking(move || recover::recover(&recovering)).await??;

    // Watch before the first scan, so nothing falls between the two.
    let (hint_tx, hint_rx) = mpsc::channel(HINTS);
    let flags = Arc::new(watcher::Flags::default());
    let setup = ctx.setup();
    let watcher = watcher::Watcher::start(&ctx.ws, &setup.cfg, hint_tx, flags.clone())?;
    let _ = ctx.watches.set(watcher.watches());
    // Journalled when it differs from the config last journalled, so a restart with
    // nothing new journals nothing.
    let journalled = ctx.ledger.lock().store().config()?.map(|(hash, _)| hash);
    if journalled.as_deref() != Some(setup.hash.as_str()) {
        let loaded = Record::ConfigLoaded {
            hash: setup.hash.clone(),
        };
        ctx.ledger.append(vec![loaded], Durability::Buffered)?;
    }
    tracing::info!(workspace = %ctx.ws.root.display(), agents = setup.cfg.agents.len(), "daemon started");
    drop(setup);
    let summary = supervisor::run(ctx.clone(), watcher, flags, hint_rx, until, shutdown).await;
    let stopping = ctx.clone();
    let killed = tokio::task::spawn_blocking(move || stopping.processes.stop_all()).await?;
    if killed > 0 {
        tracing::info!(killed, "stopped processes the agents left running");
    }
    // Records that were not synced one by one (no commit depended on them) reach the
    // disk now, not whenever the kernel gets to them.
    ctx.ledger.lock().syncer().sync()?;
    ctx.index.stop();
    let _ = tokio::task::spawn_blocking(move || index_thread.join()).await;
    if let Some(fatal) = &summary.fatal {
        anyhow::bail!("{fatal}");
    }
    Ok(summary)
}

/// blake3 of `baton.toml` as it is now, to say which config the daemon runs.
pub(crate) fn config_hash(ws: &Workspace) -> String {
    crate::publish::hash_file(&ws.config_path())
        .map(|(hash, _)| hash)
        .unwrap_or_default()
}

/// Runs the daemon in this process until SIGINT or SIGTERM or, with [`Until::Idle`],
/// until no work is pending.
pub(crate) fn run_in_foreground(ws: &Workspace, cfg: Config, until: Until) -> Result<Summary> {
    // One thread for the async side: it only decides and waits; everything that blocks
    // runs on the blocking pool. Fewer cross-thread wake-ups make dispatch latency
    // steadier (bench/dispatch.sh, latency p99).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Listening before the daemon lock is taken: whoever finds the lock (`baton stop`,
    // systemd) may send SIGTERM at once, and before this it would kill the daemon
    // outright instead of stopping it in order.
    let signals = {
        let _entered = runtime.enter();
        listen_for_shutdown()
    };
    runtime.block_on(run(ws.clone(), cfg, until, shutdown_signal(signals)))
}

/// SIGINT and SIGTERM, listened for from now on (`None` if they cannot be).
fn listen_for_shutdown() -> Option<[tokio::signal::unix::Signal; 2]> {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(int), Ok(term)) => Some([int, term]),
        _ => None,
    }
}

/// Resolves on the first SIGINT or SIGTERM `signals` hear.
async fn shutdown_signal(signals: Option<[tokio::signal::unix::Signal; 2]>) {
    let Some([mut int, mut term]) = signals else {
        tracing::warn!("cannot listen for signals; stop the daemon with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}
