//! Agents that cannot be started (issue 11): each try is a failed attempt like any
//! other, counted, retried with backoff, then dead with a reason a person understands.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::harness::*;

const ONE_RETRY: &str = r#"
[agents.x]
on = ["briefs/*.md"]
run = ["agents/x.sh"]
retries = 1
backoff = "50ms"
"#;

/// The attempts `task.finished` recorded, and the dead task's error.
fn attempts_and_error(ws: &TestWorkspace) -> (Vec<u64>, String) {
    let finished = ws.records("task.finished");
    let attempts = finished
        .iter()
        .map(|r| r["attempt"].as_u64().unwrap())
        .collect();
    let dead = ws.finished("dead");
    assert_eq!(dead.len(), 1, "{finished:?}");
    (attempts, dead[0]["error"].as_str().unwrap().to_string())
}

#[test]
fn a_missing_interpreter_is_retried_then_dead_with_its_name() {
    let ws = TestWorkspace::new(ONE_RETRY).raw_agent(
        "x",
        b"#!/usr/bin/no-such-python3\nprint('hi')\n",
        0o755,
    );
    ws.write("briefs/a.md", "x\n");
    ws.run_once(1);
    let (attempts, error) = attempts_and_error(&ws);
    assert_eq!(attempts, [1, 2], "two attempts, numbered");
    assert_eq!(
        error,
        "could not start the agent: agents/x.sh: interpreter /usr/bin/no-such-python3 not found \
         (attempt 2; 1 retries spent)"
    );
}

#[test]
fn windows_line_endings_in_a_script_are_named() {
    let ws = TestWorkspace::new(ONE_RETRY).raw_agent("x", b"#!/bin/sh\r\necho hi\r\n", 0o755);
    ws.write("briefs/a.md", "x\n");
    ws.run_once(1);
    let (attempts, error) = attempts_and_error(&ws);
    assert_eq!(attempts.len(), 2);
    assert!(
        error.contains("agents/x.sh has Windows line endings (\\r\\n)"),
        "{error}"
    );
}

#[test]
fn a_program_removed_or_made_non_executable_while_the_daemon_runs_is_dead_with_why() {
    let ws = TestWorkspace::new(&format!(
        "{ONE_RETRY}\n[agents.y]\non = [\"drafts/*.md\"]\nrun = [\"agents/y.sh\"]\nretries = 0\n"
    ))
    .agent("x", "exit 0")
    .agent("y", "exit 0");
    let daemon = ws.daemon();
    fs::remove_file(ws.path("agents/x.sh")).unwrap();
    fs::set_permissions(ws.path("agents/y.sh"), fs::Permissions::from_mode(0o644)).unwrap();
    ws.publish("briefs/a.md", "x\n");
    ws.publish("drafts/b.md", "y\n");
    wait_for("both tasks to end dead", Duration::from_secs(20), || {
        ws.finished("dead").len() == 2
    });
    let errors: Vec<String> = ws
        .finished("dead")
        .iter()
        .map(|r| r["error"].as_str().unwrap().to_string())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("agents/x.sh: no such file")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("agents/y.sh is not executable (run `chmod +x agents/y.sh`)")),
        "{errors:?}"
    );
    // x was retried once: two attempt folders, not one per try forever.
    let task = ws.finished("dead")[0]["task"].as_str().unwrap().to_string();
    let runs = fs::read_dir(ws.path(".baton/runs")).unwrap().count();
    assert_eq!(runs, 2, "one folder per task ({task} …)");
    let x_attempts = fs::read_dir(ws.path(".baton/runs"))
        .unwrap()
        .map(|task| {
            // Attempt folders; beside them, `feedback.md` says why the first failed.
            fs::read_dir(task.unwrap().path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
                .count()
        })
        .max();
    assert_eq!(
        x_attempts,
        Some(2),
        "x's two attempts, each in its own folder"
    );
    drop(daemon);
}

#[test]
fn an_interrupted_run_once_exits_non_zero() {
    let ws =
        TestWorkspace::new("[agents.slow]\non = [\"briefs/*.md\"]\nrun = [\"agents/slow.sh\"]\n")
            .agent("slow", "sleep 600");
    ws.write("briefs/a.md", "x\n");
    let daemon = ws.daemon_with(&["run", "--once"]);
    wait_for("the agent to start", Duration::from_secs(10), || {
        !ws.records("task.started").is_empty()
    });
    daemon.signal(libc::SIGINT);
    let log = daemon.log(&ws);
    assert_eq!(daemon.stop(), Some(130), "{log}");
    assert!(
        fs::read_to_string(ws.path("daemon.log"))
            .unwrap()
            .contains("interrupted before the work was drained"),
    );
}
