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
