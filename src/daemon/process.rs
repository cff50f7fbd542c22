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
