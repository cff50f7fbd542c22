//! Controlling the team (issue 11): `baton stop`, `baton cancel`, and tasks whose input
//! went away.

use std::fs;
use std::time::Duration;

use super::harness::*;

#[test]
fn baton_stop_stops_the_daemon_gracefully() {
    let ws =
        TestWorkspace::new("[agents.slow]\non = [\"briefs/*.md\"]\nrun = [\"agents/slow.sh\"]\n")
            .agent("slow", "sleep 600");
    let mut daemon = ws.daemon();
    ws.publish("briefs/a.md", "x\n");
    wait_for("the agent to start", Duration::from_secs(10), || {
        !ws.records("task.started").is_empty()
    });
    let out = ws.baton(&["stop"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("stopped the daemon"),
        "{}",
        text(&out)
    );
    assert_eq!(
        wait_exit(&mut daemon.child, Duration::from_secs(5)),
        Some(0)
    );
    // As on SIGTERM: the task runs again at the next start, with its retries intact.
    assert!(ws.finished("failed").is_empty() && ws.finished("dead").is_empty());
    let out = ws.baton(&["stop"]);
    fails_with(&out, 1, "no daemon runs on");
}

#[test]
fn cancel_ends_a_running_task_dead_and_stops_its_agent() {
    let ws =
        TestWorkspace::marked("[agents.slow]\non = [\"briefs/*.md\"]\nrun = [\"agents/slow.sh\"]\n")
            .agent(
                "slow",
                "echo $$ > \"$MARKS/agent.pid.tmp\"; mv \"$MARKS/agent.pid.tmp\" \"$MARKS/agent.pid\"; exec sleep 600",
            );
    let _daemon = ws.daemon();
    ws.publish("briefs/a.md", "x\n");
    wait_for("the agent to start", Duration::from_secs(10), || {
        ws.marks.join("agent.pid").exists()
    });
    let pid: i32 = ws.mark("agent.pid").trim().parse().unwrap();
    let out = ws.baton(&["cancel", "briefs/a.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for("the agent to be stopped", Duration::from_secs(10), || {
        !process_alive(pid)
    });
    let status = ws.status_json();
    assert_eq!(
        status["dead"][0]["error"], "cancelled by human",
        "{status:#}"
    );
    assert_eq!(status["running"].as_array().unwrap().len(), 0);
    // Nothing more is journalled for it, and it is not retried (a window to look in).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ws.records("task.started").len(), 1);
    let out = ws.baton(&["cancel", "briefs/a.md"]);
    fails_with(&out, 2, "is dead already; nothing to cancel");
}

#[test]
fn cancel_ends_a_retrying_task_before_its_next_attempt() {
    let ws = TestWorkspace::new(
        "[agents.gate]\non = [\"briefs/*.md\"]\nrun = [\"agents/gate.sh\"]\nwrites = [\"drafts\"]\nretries = 3\nbackoff = \"1s\"\n",
    )
    .agent(
        "gate",
        r#"test -f "$BATON_WORKSPACE/open" || exit 1; mkdir -p "$BATON_OUT/drafts"; echo ok > "$BATON_OUT/drafts/a.md""#,
    );
    let _daemon = ws.daemon();
    ws.publish("briefs/a.md", "x\n");
    wait_for("the first attempt to fail", Duration::from_secs(10), || {
        !ws.finished("failed").is_empty()
    });
    let out = ws.baton(&["cancel", "briefs/a.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    fs::write(ws.path("open"), "").unwrap();
    // Not started again past its backoff: a window to look in, since what is checked
    // is that nothing happens.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        ws.records("task.started").len(),
        1,
        "started again after cancel"
    );
    assert!(!ws.path("drafts/a.md").exists());
    assert_eq!(ws.status_json()["dead"][0]["error"], "cancelled by human");
}

#[test]
fn a_waiting_task_whose_input_was_removed_is_dropped_with_that_reason() {
    let ws = TestWorkspace::new(
        // Unconfined: a sandboxed agent cannot remove its input.
        "[agents.flaky]\non = [\"briefs/*.md\"]\nrun = [\"agents/flaky.sh\"]\nretries = 3\nbackoff = \"300ms\"\nsandbox = false\n",
    )
    .agent("flaky", "rm -f \"$BATON_INPUT\"; exit 1");
    ws.write("briefs/a.md", "x\n");
    ws.run_once(1);
    assert_eq!(ws.records("task.started").len(), 1, "no second attempt");
    let dead = ws.finished("dead");
    assert_eq!(
        dead[0]["error"], "its input briefs/a.md was removed",
        "{dead:?}"
    );
}
