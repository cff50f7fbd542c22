//! DESIGN §4.4–4.5: atomic handoff and crash recovery, one daemon per workspace, graceful shutdown and `baton retry`.

use std::fs;
use std::time::Duration;

use super::fixtures::*;
use super::harness::*;

#[test]
fn kill_9_mid_run_then_restart_does_every_brief_exactly_once() {
    let ws = TestWorkspace::new(
        r#"
[agents.slow]
on = ["briefs/*.md"]
run = ["agents/slow.sh"]
writes = ["drafts"]
concurrency = 3
retries = 0
"#,
    )
    .agent(
        "slow",
        r#"set -eu
name=$(basename "$BATON_INPUT")
mkdir -p "$BATON_OUT/drafts"
# Written slowly, in pieces, to be caught half-done by the kill.
for i in 1 2 3 4 5; do cat "$BATON_INPUT" >> "$BATON_OUT/drafts/$name"; sleep 0.05; done"#,
    );
    let n = 24;
    for i in 0..n {
        ws.write(&format!("briefs/b{i:02}.md"), &format!("brief {i}\n"));
    }
    let daemon = ws.daemon();
    wait_for("some tasks to finish", Duration::from_secs(30), || {
        ws.finished("done").len() >= 4
    });
    daemon.kill9();
    let orphans: Vec<i32> = ws
        .records("task.started")
        .iter()
        .map(|r| r["pid"].as_i64().unwrap() as i32)
        .collect();
    let done_before = ws.finished("done").len();
    assert!(
        done_before < n,
        "every task finished before the kill; the test proves nothing"
    );
    ws.run_once(0);
    for pid in orphans {
        assert!(
            !process_alive(pid),
            "agent {pid} of the killed daemon is still running"
        );
    }

    // Every brief done exactly once, each output whole, nothing stray in any stage.
    let done = ws.finished("done");
    let mut tasks: Vec<&str> = done.iter().map(|r| r["task"].as_str().unwrap()).collect();
    tasks.sort();
    tasks.dedup();
    assert_eq!(tasks.len(), n, "done tasks: {}", done.len());
    assert_eq!(done.len(), n, "a task finished twice");
    let expected: Vec<String> = (0..n).map(|i| format!("drafts/b{i:02}.md")).collect();
    assert_eq!(ws.files_in("drafts"), expected);
    for i in 0..n {
        assert_eq!(
            ws.read(&format!("drafts/b{i:02}.md")),
            format!("brief {i}\n").repeat(5)
        );
    }
    let artifacts = ws
        .records("artifact")
        .into_iter()
        .filter(|r| r["by"] == "slow")
        .count();
    assert_eq!(artifacts, n, "an output was committed twice");
    assert_eq!(ws.files_in("briefs").len(), n);
}

#[test]
fn a_commit_interrupted_after_its_intent_is_rolled_forward() {
    // Simulate a daemon that died between journalling `task.committing` and renaming:
    // run once to learn the ids, then rewind the journal to that point.
    let ws = copier();
    ws.write("briefs/a.md", "# A\n");
    ws.run_once(0);
    let journal = ws.read(".baton/journal/journal.jsonl");
    let task = ws.records("task.queued")[0]["task"]
        .as_str()
        .unwrap()
        .to_string();
    let cut = journal
        .lines()
        .position(|l| l.contains("\"task.committing\""))
        .expect("a committing record");
    let mut rewound: String = journal
        .lines()
        .take(cut + 1)
        .map(|l| format!("{l}\n"))
        .collect();
    rewound.push_str("{\"seq\":99,\"ts\":\"2026-"); // and a torn last line
    fs::write(ws.path(".baton/journal/journal.jsonl"), rewound).unwrap();
    // The output is back in the staging tree, not yet renamed.
    let staged = ws.path(&format!(".baton/runs/{task}/1/out/drafts/a.md"));
    fs::create_dir_all(staged.parent().unwrap()).unwrap();
    fs::rename(ws.path("drafts/a.md"), &staged).unwrap();

    ws.run_once(0);
    assert_eq!(ws.read("drafts/a.md"), "# A\n");
    let done = ws.finished("done");
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(
        ws.records("task.started").len(),
        1,
        "the task ran again instead of rolling forward"
    );
    // The torn line was cut off, and seq kept growing.
    let seqs: Vec<u64> = ws
        .journal()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[test]
fn replaced_artifacts_keep_their_old_version() {
    let ws = copier();
    ws.write("briefs/a.md", "# one\n");
    ws.run_once(0);
    ws.write("briefs/a.md", "# two\n");
    ws.run_once(0);
    assert_eq!(ws.read("drafts/a.md"), "# two\n");
    let old = ws
        .records("artifact")
        .into_iter()
        .find(|r| r["path"] == "drafts/a.md")
        .unwrap();
    let object = ws.path(&format!(".baton/objects/{}", old["hash"].as_str().unwrap()));
    assert_eq!(fs::read_to_string(object).unwrap(), "# one\n");
}

#[test]
fn a_second_daemon_is_refused_with_the_first_ones_pid() {
    let ws = copier();
    let daemon = ws.daemon();
    let out = ws.baton(&["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!(
            "a daemon is already running on {} (pid {})",
            ws.root.display(),
            daemon.pid()
        )),
        "{}",
        text(&out)
    );
    let status = ws.baton(&["status"]);
    assert!(stdout(&status).contains(&format!("daemon running (pid {})", daemon.pid())));
}

#[test]
fn sigterm_stops_running_agents_and_their_tasks_run_again_at_next_start() {
    let ws = TestWorkspace::marked(
        r#"
[agents.waiter]
on = ["briefs/*.md"]
run = ["agents/waiter.sh"]
writes = ["drafts"]
"#,
    )
    .agent(
        "waiter",
        r#"mkdir -p "$BATON_OUT/drafts"
echo "$$" > "$MARKS/agent.pid"
while [ ! -f "$BATON_WORKSPACE/release" ]; do sleep 0.05; done
echo "done on attempt $BATON_ATTEMPT" > "$BATON_OUT/drafts/out.md""#,
    );
    ws.write("briefs/a.md", "x\n");
    let daemon = ws.daemon();
    // Parsed, not just present: the shell creates the file before it writes the pid.
    let read_pid = || -> Option<i32> {
        fs::read_to_string(ws.marks.join("agent.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    wait_for("the agent to start", Duration::from_secs(10), || {
        read_pid().is_some()
    });
    let agent_pid = read_pid().unwrap();
    assert_eq!(daemon.stop(), Some(0));
    assert!(!process_alive(agent_pid), "the agent outlived the daemon");
    assert!(
        ws.records("task.finished").is_empty(),
        "an interrupted task was recorded as finished"
    );
    let status = stdout(&ws.baton(&["status"]));
    assert!(status.contains("interrupted"), "{status}");
    fs::write(ws.path("release"), "").unwrap();
    ws.run_once(0);
    assert_eq!(ws.read("drafts/out.md"), "done on attempt 2\n");
    assert_eq!(ws.finished("done").len(), 1);
}

#[test]
fn retry_runs_a_dead_task_again() {
    let ws = gate();
    ws.write("briefs/a.md", "x\n");
    ws.run_once(1);
    let task = ws.finished("dead")[0]["task"].as_str().unwrap().to_string();
    fs::write(ws.path("open"), "").unwrap();
    ws.run_once(0); // a dead task stays dead without `baton retry`
    assert!(!ws.path("drafts/a.md").exists());
    let out = ws.baton(&["retry", &task[2..8]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let again = ws.baton(&["retry", &task]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a queued task was retried twice: {}",
        text(&again)
    );
    ws.run_once(0);
    assert_eq!(ws.read("drafts/a.md"), "ok\n");
    assert_eq!(ws.records("task.started").last().unwrap()["attempt"], 2);
}

#[test]
fn retry_reaches_a_running_daemon() {
    let ws = gate();
    let _daemon = ws.daemon();
    ws.publish("briefs/a.md", "x\n");
    wait_for("the task to die", Duration::from_secs(10), || {
        ws.finished("dead").len() == 1
    });
    let task = ws.finished("dead")[0]["task"].as_str().unwrap().to_string();
    fs::write(ws.path("open"), "").unwrap();
    assert_eq!(ws.baton(&["retry", &task]).status.code(), Some(0));
    wait_for(
        "the retried task to commit",
        Duration::from_secs(10),
        || ws.path("drafts/a.md").exists(),
    );
}
