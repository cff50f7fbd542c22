//! Stopping an agent's process group: each agent runs in its own group, so a timeout or
//! a shutdown can stop everything it started, grandchildren included (DESIGN §3).

use std::time::Duration;

use tokio::time::Instant;

use crate::sys::{group_alive, signal_group, start_time};

/// How long a group gets between SIGTERM and SIGKILL.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);

/// SIGTERM to the group, SIGKILL after [`KILL_GRACE`], and waits until no member is
/// left. `reap` is polled so the group leader (our child) does not linger as a zombie.
pub(crate) async fn stop_group(pgid: u32, mut reap: impl FnMut()) {
    signal_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + KILL_GRACE;
    let mut killed = false;
    loop {
        reap();
        if !group_alive(pgid) {
            return;
        }
        if !killed && Instant::now() >= deadline {
            signal_group(pgid, libc::SIGKILL);
            killed = true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kills what a finished agent left running in its group: once the agent has exited,
/// nothing of its may go on writing into its staging tree.
pub(crate) async fn kill_leftovers(pgid: u32) {
    if !group_alive(pgid) {
        return;
    }
    signal_group(pgid, libc::SIGKILL);
    while group_alive(pgid) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Stops the group of an agent that a crashed daemon left running, if `pid` is still
/// the process it started (same start time). Blocking; used at startup.
pub(crate) fn stop_stale_group(pid: u32, start: u64) {
    match start_time(pid) {
        // The pid now names another process: the old group is gone (a pid is not
        // reused while a group with that id exists).
        Some(now) if now != start => return,
        _ => {}
    }
    signal_group(pid, libc::SIGKILL);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while group_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every process an attempt started, found and stopped when the attempt ends, whether it
/// stayed in the agent's group or not (`setsid`, `setpgid`, a double fork).
///
/// The daemon is the child subreaper of its agents, so whatever they orphan is
/// reparented to it. When an attempt ends, each such adopted process (and everything
/// under it) that could belong to that attempt is killed: one whose environment names
/// an attempt no longer running, or, when its environment was cleared, one that no
/// running attempt can have started (none started before it did). Adopted processes
/// that end by themselves are reaped.
pub(crate) struct Tracker {
    /// Whether the daemon became the subreaper; without it orphans escape to pid 1.
    adopting: bool,
    running: std::sync::Mutex<Vec<Running>>,
}

/// An attempt whose agent runs.
#[derive(Debug, Clone)]
struct Running {
    task: String,
    attempt: u32,
    /// The agent's pid, once started.
    pid: Option<u32>,
    /// When the attempt was about to start, in clock ticks since boot.
    since: u64,
}

impl Tracker {
    pub(crate) fn new() -> Tracker {
        let adopting = crate::sys::become_subreaper();
        if !adopting {
            tracing::warn!(
                "cannot become the child subreaper: processes that leave an agent's process group may outlive it"
            );
        }
        Tracker {
            adopting,
            running: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Vec<Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts attempt `attempt` of `task` with `spawn`, and tracks it. The list is held
    /// meanwhile, so [`Tracker::ended`] never mistakes the new agent for an orphan.
    pub(crate) fn spawn<T>(
        &self,
        task: &str,
        attempt: u32,
        spawn: impl FnOnce() -> std::io::Result<T>,
        pid_of: impl Fn(&T) -> Option<u32>,
    ) -> std::io::Result<T> {
        let mut running = self.running();
        let since = crate::sys::boot_ticks();
        let spawned = spawn()?;
        running.push(Running {
            task: task.to_string(),
            attempt,
            pid: pid_of(&spawned),
            since,
        });
        Ok(spawned)
    }

    /// Attempt `attempt` of `task` has ended and its agent was waited for: stops every
    /// process it left, in or out of its group, and reaps those that ended. Blocking (it
    /// reads /proc when the daemon has adopted anything); returns how many it killed.
    pub(crate) fn ended(&self, task: &str, attempt: u32) -> usize {
        let mut running = self.running();
        running.retain(|r| !(r.task == task && r.attempt == attempt));
        if !self.adopting || adopted(&running).is_empty() {
            return 0; // the common case: one read of /proc, the daemon's children
        }
        self.kill_until_gone(|| self.doomed(&running), &running)
    }

    /// Kills every process the daemon's agents started, at its shutdown, once every
    /// runner has ended.
    pub(crate) fn stop_all(&self) -> usize {
        let running = self.running();
        let me = std::process::id();
        self.kill_until_gone(|| descendants(&crate::sys::processes(), me, &[]), &running)
    }

    /// Reaps adopted processes that ended by themselves, so they do not stay zombies.
    pub(crate) fn reap(&self) {
        if self.adopting {
            let running = self.running();
            for pid in adopted(&running) {
                crate::sys::reap(pid);
            }
        }
    }

    /// Kills what `doomed` finds, again and again: a process killed leaves its children
    /// to the daemon, found by the next pass. Reaps what ended.
    fn kill_until_gone(&self, doomed: impl Fn() -> Vec<u32>, running: &[Running]) -> usize {
        let mut killed = 0;
        for _ in 0..100 {
            let pids = doomed();
            for pid in &pids {
                crate::sys::signal_process(*pid, libc::SIGKILL);
            }
            for pid in adopted(running) {
                crate::sys::reap(pid);
            }
            if pids.is_empty() {
                break;
            }
            killed += pids.len();
            std::thread::sleep(Duration::from_millis(2));
        }
        killed
    }

    /// The live processes adopted from attempts that are over, with all they started.
    fn doomed(&self, running: &[Running]) -> Vec<u32> {
        let orphans = adopted(running);
        if orphans.is_empty() {
            return Vec::new(); // the common case: no read of /proc past our children
        }
        let procs = crate::sys::processes();
        let agents: Vec<u32> = running.iter().filter_map(|r| r.pid).collect();
        let mut doomed = Vec::new();
        for orphan in procs
            .iter()
            .filter(|p| orphans.contains(&p.pid) && !p.zombie)
        {
            let [task, attempt] =
                crate::sys::environ_values(orphan.pid, ["BATON_TASK", "BATON_ATTEMPT"]);
            let attempt: Option<u32> = attempt.and_then(|a| a.parse().ok());
            let over = match (&task, attempt) {
                (Some(task), Some(attempt)) => !running
                    .iter()
                    .any(|r| &r.task == task && r.attempt == attempt),
                // Its environment was cleared: it is over once no running attempt
                // started before it did (a tick's slack either way).
                _ => !running.iter().any(|r| r.since <= orphan.start + 1),
            };
            if over {
                doomed.extend(descendants(&procs, orphan.pid, &agents));
                doomed.push(orphan.pid);
            }
        }
        doomed
    }
}

/// After a daemon died: stops what attempts `attempts` (task id, attempt number) of the
/// workspace at `root` started outside their process groups and left running, with
/// all they started. Nothing adopts those any more, so they are found by the
/// environment they inherited (`BATON_WORKSPACE`, `BATON_TASK`, `BATON_ATTEMPT`); one
/// that cleared its environment cannot be told apart from anyone else's process, and
/// lives on. Reads every process's environment: called only when a daemon died with
/// attempts running. Returns how many it killed.
pub(crate) fn stop_escaped(root: &std::path::Path, attempts: &[(&str, u32)]) -> usize {
    if attempts.is_empty() {
        return 0;
    }
    let root = root.to_string_lossy();
    let me = std::process::id();
    let mut killed = std::collections::HashSet::new();
    // Again until none is found: one may fork as its parent is killed.
    for _ in 0..10 {
        let procs = crate::sys::processes();
        let mut doomed = Vec::new();
        for p in procs.iter().filter(|p| !p.zombie && p.pid != me) {
            let [ws, task, attempt] = crate::sys::environ_values(
                p.pid,
                ["BATON_WORKSPACE", "BATON_TASK", "BATON_ATTEMPT"],
            );
            let attempt: Option<u32> = attempt.and_then(|a| a.parse().ok());
            let ours = ws.as_deref() == Some(&*root)
                && attempts
                    .iter()
                    .any(|(t, n)| task.as_deref() == Some(*t) && attempt == Some(*n));
            if ours {
                doomed.push(p.pid);
                doomed.extend(descendants(&procs, p.pid, &[]));
            }
        }
        doomed.retain(|pid| !killed.contains(pid));
        if doomed.is_empty() {
            break;
        }
        for pid in doomed {
            crate::sys::signal_process(pid, libc::SIGKILL);
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    killed.len()
}

/// The daemon's children that are not running agents: what it adopted as the
/// subreaper (live or zombie).
fn adopted(running: &[Running]) -> Vec<u32> {
    let mut children = crate::sys::main_thread_children();
    children.retain(|pid| !running.iter().any(|r| r.pid == Some(*pid)));
    children
}

/// The live descendants of `root` in `procs` (not `root` itself), leaving out the
/// subtrees of `spared`.
fn descendants(procs: &[crate::sys::Proc], root: u32, spared: &[u32]) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in procs.iter().filter(|p| p.ppid == parent) {
            if spared.contains(&p.pid) {
                continue;
            }
            if !p.zombie {
                found.push(p.pid);
            }
            frontier.push(p.pid);
        }
    }
    found
}
