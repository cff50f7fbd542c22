//! Regression tests, each named after what it guards.

use std::process::Stdio;
use std::time::Duration;

use super::fixtures::*;
use super::harness::*;

/// A log line that cannot be written used to panic a runner (tracing reports write
/// errors with eprintln!), which lost its slot and wedged the daemon for good.
#[test]
fn regression_a_closed_stderr_does_not_wedge_the_daemon() {
    let ws = copier();
    for i in 0..6 {
        ws.write(&format!("briefs/b{i}.md"), "x\n");
    }
    let mut child = ws
        .command(&["run", "--once"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader goes away: every log write fails
    let code = wait_exit(&mut child, Duration::from_secs(30));
    if code.is_none() {
        let _ = child.kill();
    }
    assert_eq!(
        code,
        Some(0),
        "the daemon hung or failed with its stderr closed"
    );
    assert_eq!(ws.files_in("drafts").len(), 6);
}

/// The daemon listened for SIGTERM only once its main loop ran, well after it took the
/// daemon lock: a `baton stop` (or systemd's) that found the lock meanwhile killed it
/// outright, with SIGTERM's default action, instead of stopping it in order.
#[test]
fn regression_a_sigterm_as_soon_as_the_daemon_lock_is_taken_stops_it_in_order() {
    let ws = copier();
    for round in 0..5 {
        let mut child = ws
            .command(&["run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        let lock = ws.path(".baton/daemon.lock");
        // No sleep between polls: the signal goes the moment the pid is there.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&lock).is_ok_and(|s| s.trim() == pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon took no lock"
            );
        }
        // SAFETY: kill(2) on our own child; no memory involved.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let code = wait_exit(&mut child, Duration::from_secs(20));
        if code.is_none() {
            let _ = child.kill();
        }
        assert_eq!(
            code,
            Some(0),
            "round {round}: killed by the signal, not stopped"
        );
    }
}
