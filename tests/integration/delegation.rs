//! DESIGN §7: delegation by path, its limits, front matter, refs, trace and approval.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use super::fixtures::*;
use super::harness::*;

#[test]
fn delegation_outside_delegates_to_is_refused_and_the_rest_commits() {
    let config = manager_config("", "").replace(
        "writes = [\"parts\"]",
        "writes = [\"parts\"]\ndelegates_to = [\"worker\"]",
    ) + "\n[agents.legal]\non = []\nrun = [\"agents/worker.sh\"]\nwrites = [\"sections\"]\n";
    let ws = TestWorkspace::marked(&config)
        .agent(
            "manager",
            &format!(
                "{}\nbaton delegate --to legal parts/p1.md --note 'not allowed'",
                manager_script(1, "worker")
            ),
        )
        .agent("worker", WORKER_SCRIPT);
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    let refused = rejections(&ws);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains(
            "not sent to `legal`: agent `manager` may delegate only to worker (delegates_to)"
        ),
        "{refused:?}"
    );
    // The manager succeeded: its part and the allowed delegation were committed and ran.
    assert_eq!(ws.files_in("sections"), ["sections/p1.md"]);
    let status = stdout(&ws.baton(&["status"]));
    assert!(status.contains("may delegate only to worker"), "{status}");
    // The join is told about both children.
    let joins = join_files(&ws);
    assert_eq!(joins.len(), 1);
    let statuses: Vec<&str> = joins[0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    let mut statuses = statuses;
    statuses.sort();
    assert_eq!(statuses, ["done", "rejected"]);
}

#[test]
fn a_fan_out_over_max_children_is_refused_beyond_the_limit() {
    let ws = TestWorkspace::marked(&manager_config("concurrency = 2", "max_children = 3"))
        .agent("manager", &manager_script(5, "worker"))
        .agent("worker", WORKER_SCRIPT);
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    assert_eq!(queued_with_reason(&ws, "delegate").len(), 3);
    let refused = rejections(&ws);
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused.iter().all(|r| r.contains("max_children = 3")),
        "{refused:?}"
    );
    assert_eq!(ws.files_in("sections").len(), 3);
    assert_eq!(join_files(&ws)[0]["children"].as_array().unwrap().len(), 5);
}

#[test]
fn a_cycle_is_refused_with_its_reason() {
    // ping copies briefs to drafts, pong copies drafts back to briefs: the same content
    // would reach ping again in its own chain.
    let ws = TestWorkspace::new(
        r#"
[agents.ping]
on = ["briefs/*.md"]
run = ["agents/ping.sh"]
writes = ["drafts"]

[agents.pong]
on = ["drafts/*.md"]
run = ["agents/pong.sh"]
writes = ["briefs"]
"#,
    )
    .agent(
        "ping",
        r#"mkdir -p "$BATON_OUT/drafts"; cp "$BATON_INPUT" "$BATON_OUT/drafts/$(basename "$BATON_INPUT" .md)-x.md""#,
    )
    .agent(
        "pong",
        r#"mkdir -p "$BATON_OUT/briefs"; cp "$BATON_INPUT" "$BATON_OUT/briefs/$(basename "$BATON_INPUT" .md)-y.md""#,
    );
    ws.publish("briefs/a.md", "same words\n");
    ws.run_once(0);
    let refused = rejections(&ws);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("briefs/a-x-y.md: not sent to `ping`: a cycle"),
        "{refused:?}"
    );
    assert_eq!(ws.records("task.queued").len(), 2);
}

#[test]
fn delegation_beyond_max_depth_is_refused() {
    let ws = TestWorkspace::marked(&manager_config("", "max_depth = 0"))
        .agent("manager", &manager_script(1, "worker"))
        .agent("worker", WORKER_SCRIPT);
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    let refused = rejections(&ws);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("over max_depth = 0"), "{refused:?}");
    assert!(stdout(&ws.baton(&["status"])).contains("over max_depth = 0"));
    assert_eq!(join_files(&ws)[0]["children"][0]["status"], "rejected");
}

#[test]
fn malformed_front_matter_and_bad_routes_are_rejected_with_where_and_why() {
    let ws = copier();
    let bad = "+++\ntitle = \"ok\"\nto = legal\n+++\nBody\n";
    ws.publish("briefs/bad.md", bad);
    ws.publish("briefs/nobody.md", "+++\nto = \"nobody\"\n+++\n");
    ws.publish("briefs/missing.md", "+++\nrefs = [\"data/q3.csv\"]\n+++\n");
    ws.publish(
        "briefs/escape.md",
        "+++\nrefs = [\"../../etc/passwd\"]\n+++\n",
    );
    ws.run_once(0);
    assert!(ws.records("task.queued").is_empty());
    let refused = rejections(&ws);
    let find = |path: &str| {
        refused
            .iter()
            .find(|r| r.starts_with(path))
            .unwrap_or_else(|| panic!("{path} not rejected: {refused:?}"))
            .clone()
    };
    assert!(find("briefs/bad.md").contains("front matter, line 3, column 6"));
    assert!(find("briefs/nobody.md").contains("known agents are copier"));
    assert!(find("briefs/missing.md").contains("refs: `data/q3.csv` (data/q3.csv) does not exist"));
    assert!(find("briefs/escape.md").contains("climbs out"));
    // The files stay as they were; status and log show why.
    assert_eq!(ws.read("briefs/bad.md"), bad);
    let status = stdout(&ws.baton(&["status"]));
    assert!(
        status.contains("rejected (4)") && status.contains("line 3, column 6"),
        "{status}"
    );
    let log = stdout(&ws.baton(&["log"]));
    assert!(
        log.contains("rejected  briefs/bad.md: front matter, line 3"),
        "{log}"
    );
    // Once reported, a version is not reported again.
    ws.run_once(0);
    assert_eq!(rejections(&ws).len(), 4);
}

#[test]
fn refs_are_resolved_into_task_json() {
    let ws = TestWorkspace::marked(COPIER).agent(
        "copier",
        r#"set -eu; cp "$BATON_TASK_FILE" "$MARKS/task.json""#,
    );
    ws.write("data/q3.csv", "a,b\n");
    ws.write("briefs/sub/notes.md", "notes\n");
    ws.run_once(0);
    ws.publish(
        "briefs/sub/launch.md",
        "+++\nrefs = [\"data/q3.csv\", \"./notes.md\", \"../sub/notes.md\"]\n+++\nGo.\n",
    );
    ws.run_once(0);
    let task: Value = serde_json::from_str(&ws.mark("task.json")).unwrap();
    assert_eq!(task["input"], "briefs/sub/launch.md");
    assert_eq!(
        task["refs"],
        serde_json::json!(["data/q3.csv", "briefs/sub/notes.md", "briefs/sub/notes.md"])
    );
    assert_eq!(task["join"], false);
}

#[test]
fn delegate_outside_a_task_publishes_a_brief_as_human() {
    let ws = TestWorkspace::marked(&manager_config("", ""))
        .agent("manager", "true")
        .agent("worker", WORKER_SCRIPT);
    ws.write("parts/p1.md", "part one\n");
    ws.write("parts/style.md", "be brief\n");
    let out = ws
        .command(&[
            "delegate",
            "--to",
            "worker",
            "parts/p1.md",
            "--note",
            "Please do it.\n",
            "--ref",
            "parts/style.md",
        ])
        .current_dir(&ws.root)
        .env_remove("BATON_TASK")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let brief = stdout(&out).trim().to_string();
    assert!(
        brief.starts_with("briefs/p1.worker.") && brief.ends_with(".md"),
        "{brief}"
    );
    let text_of = ws.read(&brief);
    assert!(
        text_of.contains("to = \"worker\"")
            && text_of.contains("refs = [\"parts/p1.md\", \"parts/style.md\"]"),
        "{text_of}"
    );
    assert!(text_of.ends_with("+++\nPlease do it.\n"), "{text_of}");
    assert!(!text_of.contains("reply_to"));
    assert_eq!(ws.records("artifact")[0]["by"], "human");
    ws.run_once(0);
    assert_eq!(ws.read("sections/p1.md"), "part one\n");

    for (args, message) in [
        (
            vec!["delegate", "--to", "nobody", "parts/p1.md"],
            "no such agent; agents are manager, worker",
        ),
        (
            vec!["delegate", "--to", "worker", "parts/none.md"],
            "no such file in the workspace",
        ),
    ] {
        let out = ws.command(&args).current_dir(&ws.root).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(stderr(&out).contains(message), "{}", text(&out));
    }
}

#[test]
fn trace_shows_the_delegation_tree() {
    let ws = example("manager-worker");
    drop_all(&ws, "sample-briefs");
    ws.run_once(0);
    let out = ws.baton(&["trace", "reports/launch.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = stdout(&out);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[0], "briefs/launch.md  by human", "{shown}");
    assert!(
        lines[1].starts_with("manager  t-") && lines[1].contains("  done  "),
        "{shown}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("├─ worker (delegated)"))
            .count(),
        3,
        "{shown}"
    );
    let join = lines.last().unwrap();
    assert!(
        join.starts_with("└─ manager (join)") && join.contains("writes reports/launch.md"),
        "{shown}"
    );

    // From a worker's task id, the same tree; as JSON, nested.
    let worker = queued_with_reason(&ws, "delegate")[0]["task"]
        .as_str()
        .unwrap()
        .to_string();
    let out = ws.baton(&["trace", &worker[..9], "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = &doc["trees"][0];
    assert_eq!(root["agent"], "manager");
    let children = root["children"].as_array().unwrap();
    assert_eq!(children.len(), 4);
    let focused: Vec<&Value> = children.iter().filter(|c| c["focus"] == true).collect();
    assert_eq!(focused.len(), 1);
    assert_eq!(focused[0]["task"], worker.as_str());
    assert!(
        focused[0]["reads"][1]
            .as_str()
            .unwrap()
            .starts_with("parts/launch-")
    );
    assert!(focused[0]["duration_ms"].is_u64());
    // Not found: 1 (issue 11: one exit-code rule).
    let out = ws.baton(&["trace", "t-nothing"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn log_follow_shows_delegations_as_they_happen() {
    let ws = TestWorkspace::marked(&manager_config("", ""))
        .agent("manager", &manager_script(1, "worker"))
        .agent("worker", WORKER_SCRIPT);
    let feed = ws.path("feed.log");
    let mut follow = ws
        .command(&["log", "--follow"])
        .stdout(fs::File::create(&feed).unwrap())
        .spawn()
        .unwrap();
    let daemon = ws.daemon();
    ws.publish("briefs/job.md", "# Job\n");
    wait_for(
        "the delegation and the join in the feed",
        Duration::from_secs(20),
        || {
            let text = fs::read_to_string(&feed).unwrap_or_default();
            text.contains("delegated  t-") && text.contains("join  t-")
        },
    );
    daemon.stop();
    let _ = follow.kill();
    let _ = follow.wait();
    let text = fs::read_to_string(&feed).unwrap();
    assert!(text.contains("delegated by manager"), "{text}");
}

#[test]
fn approving_with_a_daemon_running_lets_the_pipeline_go_on() {
    let ws = TestWorkspace::new(
        r#"
[agents.publisher]
on = ["briefs/*.md"]
run = ["agents/publisher.sh"]
writes = ["published"]

[agents.announcer]
on = ["published/*.md"]
run = ["agents/announcer.sh"]
writes = ["reviews"]

[stages.published]
approval = true
"#,
    )
    .agent(
        "publisher",
        r#"mkdir -p "$BATON_OUT/published"; cp "$BATON_INPUT" "$BATON_OUT/published/""#,
    )
    .agent(
        "announcer",
        r#"mkdir -p "$BATON_OUT/reviews"; cp "$BATON_INPUT" "$BATON_OUT/reviews/""#,
    );
    let daemon = ws.daemon();
    ws.publish("briefs/news.md", "big news\n");
    wait_for(
        "the publisher's output to be held",
        Duration::from_secs(10),
        || {
            ws.status_json()["held"]
                .as_array()
                .is_some_and(|h| h.len() == 1)
        },
    );
    assert!(!ws.path("published/news.md").exists());
    let task = ws.status_json()["held"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = ws.baton(&["approve", &task]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for(
        "the announcer to run on the approved file",
        Duration::from_secs(10),
        || ws.path("reviews/news.md").exists(),
    );
    assert_eq!(ws.read("published/news.md"), "big news\n");
    daemon.stop();
    let queued: Vec<Value> = ws
        .records("task.queued")
        .iter()
        .map(|r| r["agent"].clone())
        .collect();
    assert_eq!(queued, ["publisher", "announcer"], "each ran once");
}
