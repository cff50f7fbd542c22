//! DESIGN §7, report back: joins run once when the delegated work is settled.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use super::fixtures::*;
use super::harness::*;

#[test]
fn children_run_in_parallel_and_the_join_runs_exactly_once() {
    // Four workers that each wait until all four have started: they can only finish if
    // they run at the same time, and then they finish together.
    let ws = TestWorkspace::marked(&manager_config("concurrency = 4", ""))
        .agent("manager", &manager_script(4, "worker"))
        .agent(
            "worker",
            &format!(
                r#"touch "$MARKS/started.$BATON_TASK"
i=0
while [ "$(ls "$MARKS" | grep -c '^started\.')" -lt 4 ]; do
    i=$((i + 1)); [ "$i" -lt 400 ] || exit 1; sleep 0.05
done
{WORKER_SCRIPT}"#
            ),
        );
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    let joins = join_files(&ws);
    assert_eq!(joins.len(), 1, "the join ran once");
    assert_eq!(queued_with_reason(&ws, "join").len(), 1);
    let join = &joins[0];
    assert_eq!(join["join"], true);
    let children = join["children"].as_array().unwrap();
    assert_eq!(children.len(), 4);
    for (i, child) in children.iter().enumerate() {
        assert_eq!(child["status"], "done", "{child}");
        assert_eq!(child["agent"], "worker");
        assert_eq!(child["outputs"][0], format!("sections/p{}.md", i + 1));
        assert_eq!(child["summary"], format!("did parts/p{}.md", i + 1));
        assert!(child["brief"].as_str().unwrap().starts_with("briefs/p"));
    }
    // The join ran on the delegating task's input, with BATON_JOIN=1.
    let manager = &ws.records("task.queued")[0];
    assert_eq!(join["input"], manager["input"]);
    assert_eq!(join["parent"], manager["task"]);
}

#[test]
fn a_join_waits_for_what_the_children_triggered_in_turn() {
    // The worker's section goes on to a reviewer (a pipeline step): the join waits for it.
    let ws = TestWorkspace::marked(&manager_config(
        r#"
[agents.reviewer]
on = ["sections/*.md"]
run = ["agents/reviewer.sh"]
writes = []
"#,
        "",
    ))
    .agent("manager", &manager_script(2, "worker"))
    .agent("worker", WORKER_SCRIPT)
    .agent(
        "reviewer",
        r#"sleep 0.3; echo "$BATON_INPUT" >> "$MARKS/reviewed.log""#,
    );
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    let joins = join_files(&ws);
    assert_eq!(joins.len(), 1);
    let reviewed = ws.mark("reviewed.log");
    assert_eq!(reviewed.lines().count(), 2, "{reviewed}");
    let join_task = queued_with_reason(&ws, "join")[0]["task"].clone();
    let journal = ws.journal();
    let pos = |pred: &dyn Fn(&Value) -> bool| journal.iter().position(pred).unwrap();
    let last_review = journal
        .iter()
        .rposition(|r| {
            r["kind"] == "task.finished"
                && ws
                    .records("task.queued")
                    .iter()
                    .any(|q| q["task"] == r["task"] && q["agent"] == "reviewer")
        })
        .unwrap();
    let join_queued = pos(&|r| r["kind"] == "task.queued" && r["task"] == join_task);
    assert!(
        last_review < join_queued,
        "the join was queued before the reviews ended"
    );
}

#[test]
fn a_join_is_queued_once_after_a_crash_between_the_last_child_and_the_join() {
    let ws = TestWorkspace::marked(&manager_config("concurrency = 2", ""))
        .agent("manager", &manager_script(2, "worker"))
        .agent("worker", WORKER_SCRIPT);
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    assert_eq!(join_files(&ws).len(), 1);
    let join_task = queued_with_reason(&ws, "join")[0]["task"]
        .as_str()
        .unwrap()
        .to_string();

    // Cut the journal back to just before the join was queued: exactly what a daemon
    // killed between the last child's commit and the join leaves.
    let journal = ws.path(".baton/journal/journal.jsonl");
    let text = fs::read_to_string(&journal).unwrap();
    let kept: String = text
        .lines()
        .take_while(|l| !l.contains(&join_task))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&journal, kept).unwrap();
    fs::remove_dir_all(ws.path(&format!(".baton/runs/{join_task}"))).unwrap();
    ws.run_once(0);
    assert_eq!(join_files(&ws).len(), 2, "the join ran again after the cut");
    assert_eq!(queued_with_reason(&ws, "join").len(), 1);

    // And a daemon killed after queuing the join, before it ran: it runs once at start.
    let text = fs::read_to_string(&journal).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.contains(&join_task) || l.contains("task.queued"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&journal, kept).unwrap();
    ws.run_once(0);
    assert_eq!(join_files(&ws).len(), 3);
    assert_eq!(queued_with_reason(&ws, "join").len(), 1);
    ws.run_once(0);
    assert_eq!(join_files(&ws).len(), 3, "nothing more to do");
}

#[test]
fn a_delegating_agent_that_fails_after_delegating_leaves_no_child_brief() {
    let ws = TestWorkspace::marked(&manager_config("", ""))
        .agent(
            "manager",
            &format!("{}\nexit 1", manager_script(2, "worker")),
        )
        .agent("worker", WORKER_SCRIPT);
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(1);
    assert_eq!(ws.files_in("briefs"), ["briefs/job.md"]);
    assert!(ws.files_in("parts").is_empty());
    let agents: Vec<Value> = ws
        .records("task.queued")
        .iter()
        .map(|r| r["agent"].clone())
        .collect();
    assert_eq!(agents, ["manager"]);
}

#[test]
fn status_shows_a_delegator_waiting_for_its_children() {
    let ws = TestWorkspace::marked(&manager_config("concurrency = 2", ""))
        .agent("manager", &manager_script(2, "worker"))
        .agent(
            "worker",
            &format!(
                r#"i=0
while [ ! -f "$BATON_WORKSPACE/open" ]; do i=$((i + 1)); [ "$i" -lt 600 ] || exit 1; sleep 0.05; done
{WORKER_SCRIPT}"#
            ),
        );
    let daemon = ws.daemon();
    ws.publish("briefs/job.md", "# Job\n");
    wait_for(
        "the manager to wait for two briefs",
        Duration::from_secs(10),
        || {
            let s = ws.status_json();
            s["waiting"][0]["delegated"] == 2 && s["waiting"][0]["settled"] == 0
        },
    );
    let shown = stdout(&ws.baton(&["status"]));
    assert!(shown.contains("0 of 2 delegated briefs settled"), "{shown}");
    ws.write("open", "");
    wait_for("the join", Duration::from_secs(20), || {
        join_files(&ws).len() == 1
    });
    daemon.stop();
    let s = ws.status_json();
    assert_eq!(s["waiting"].as_array().unwrap().len(), 0);
}

#[test]
fn a_daemon_killed_as_the_last_child_finishes_still_joins_once() {
    let ws = TestWorkspace::marked(&manager_config("concurrency = 2", ""))
        .agent("manager", &manager_script(2, "worker"))
        .agent("worker", &format!("sleep 0.2\n{WORKER_SCRIPT}"));
    let daemon = ws.daemon();
    ws.publish("briefs/job.md", "# Job\n");
    wait_for("both workers to finish", Duration::from_secs(20), || {
        ws.finished("done").len() >= 3
    });
    daemon.kill9();
    ws.run_once(0);
    let joins = queued_with_reason(&ws, "join");
    assert_eq!(joins.len(), 1, "queued once");
    let join_task = joins[0]["task"].clone();
    let done: Vec<Value> = ws
        .finished("done")
        .into_iter()
        .filter(|r| r["task"] == join_task)
        .collect();
    assert_eq!(done.len(), 1, "the join finished once");
    assert!(!join_files(&ws).is_empty());
}
