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

/// Regression: an agent that delegates again at every join (it ignores `BATON_JOIN`)
/// ran forever: its briefs were refused past `max_depth`, but a refused brief is settled,
/// so each join was followed by the next, hundreds deep. A join now counts in the
/// chain's depth: one may go past `max_depth`, the next is refused.
#[test]
fn a_join_that_delegates_again_stops_at_max_depth() {
    let ws = TestWorkspace::marked(
        r#"
[workspace]
stages = ["briefs", "parts"]
max_depth = 3

[agents.looper]
on = ["briefs/job.md"]
run = ["agents/looper.sh"]
writes = ["parts"]

[agents.helper]
on = []
run = ["true"]
writes = ["parts"]
"#,
    )
    .agent(
        "looper",
        r#"set -eu
mkdir -p "$BATON_OUT/parts"
echo "part $BATON_TASK" > "$BATON_OUT/parts/p.md"
"$BATON_BIN" delegate --to helper "$BATON_OUT/parts/p.md" >/dev/null"#,
    );
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    let joins = ws
        .records("task.queued")
        .into_iter()
        .filter(|q| q["reason"] == "join")
        .count();
    assert!(joins <= 4, "{joins} joins: one past max_depth at most");
    let rejected = ws.records("rejected");
    assert!(
        rejected.iter().any(|r| r["error"]
            .as_str()
            .unwrap()
            .contains("is not queued: it would be 5 deep")),
        "{rejected:?}"
    );
}
