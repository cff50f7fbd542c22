//! Process groups: each agent runs in its own group, so a timeout or a shutdown can stop
//! everything it started, grandchildren included (DESIGN §3).

use std::time::Duration;

use tokio::time::Instant;

/// How long a group gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// The fields of /proc/PID/stat from the third (the state) on. The command name (the
/// second) is in parentheses and may hold spaces, so fields are counted after it.
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// The start time of `pid` in clock ticks since boot (/proc/PID/stat field 22), which
/// together with the pid names one process for good: pids are reused, start times not.
pub fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

pub fn signal_group(pgid: u32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
    unsafe {
        libc::kill(-(pgid as i32), signal);
    }
}

/// Whether any live (non-zombie) process is still in group `pgid`. Zombies are left out:
/// orphans are reparented to pid 1, which in a container may never reap them.
pub fn group_alive(pgid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let exists = unsafe { libc::kill(-(pgid as i32), 0) } == 0;
    if !exists {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        let Some(fields) = stat_fields(pid) else {
            return false;
        };
        let pgrp = fields.get(2).and_then(|s| s.parse::<u32>().ok());
        pgrp == Some(pgid) && fields.first().map(String::as_str) != Some("Z")
    })
}

/// SIGTERM to the group, SIGKILL after [`KILL_GRACE`], and waits until no member is
/// left. `reap` is polled so the group leader (our child) does not linger as a zombie.
pub async fn stop_group(pgid: u32, mut reap: impl FnMut()) {
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
pub async fn kill_leftovers(pgid: u32) {
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
pub fn stop_stale_group(pid: u32, start: u64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_start_time() {
        let me = std::process::id();
        let t = start_time(me).expect("a start time for this process");
        assert_eq!(start_time(me), Some(t));
        assert_eq!(start_time(u32::MAX - 1), None);
    }
}
