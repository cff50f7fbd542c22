//! Issue 15, fallbacks: a dead task's input goes to the next agent of its `fallback`
//! list, and `human` holds it escalated for `baton resolve`, `retry` or `cancel`.

use std::fs;

use serde_json::Value;

use super::fixtures::*;
use super::harness::*;

/// The worker fails part 2; its fallback `backup` stops at a fatal exit; a person is
/// last.
fn escalating_team() -> TestWorkspace {
    let workers = r#"fallback = ["backup", "human"]

[agents.backup]
on = []
run = ["agents/backup.sh"]
writes = ["sections"]
retries = 2
fatal_exits = [65]
"#;
    TestWorkspace::marked(&manager_config(workers, ""))
        .agent("manager", &manager_script(3, "worker"))
        .agent(
            "worker",
            &format!(
                r#"part=$(sed -n 's/^refs = \["\([^"]*\)".*/\1/p' "$BATON_INPUT")
case "$part" in *p2.md) echo "part 2 is beyond me" >&2; exit 3 ;; esac
{WORKER_SCRIPT}"#
            ),
        )
        .agent(
            "backup",
            r#"echo run >> "$MARKS/backup-runs"
cp "$BATON_FEEDBACK" "$MARKS/backup-feedback.md"
cp "$BATON_TASK_FILE" "$MARKS/backup-task.json"
echo "no idea either" >&2
exit 65"#,
        )
}

fn task_of(ws: &TestWorkspace, agent: &str) -> Value {
    let queued = ws.records("task.queued");
    queued
        .into_iter()
        .find(|q| q["agent"] == agent)
        .unwrap_or_else(|| panic!("no task of {agent} queued"))
}

#[test]
fn a_fallback_chain_ends_at_a_person_who_resolves_it_and_the_join_runs_once() {
    let ws = escalating_team();
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(1);

    // The worker's task on part 2 died; the same input went to backup, as a new task.
    let fallbacks = queued_with_reason(&ws, "fallback");
    assert_eq!(fallbacks.len(), 1, "{fallbacks:?}");
    let backup = &fallbacks[0];
    assert_eq!(backup["agent"], "backup");
    let dead_worker = ws
        .records("task.queued")
        .into_iter()
        .find(|q| q["task"] == backup["parent"])
        .expect("its parent is the dead task");
    assert_eq!(dead_worker["agent"], "worker");
    assert_eq!(backup["input"], dead_worker["input"]);
    assert_eq!(backup["depth"], dead_worker["depth"]);

    // Its fatal exit spent no retries, and it was told why the worker failed.
    assert_eq!(ws.mark("backup-runs").lines().count(), 1);
    let feedback = ws.mark("backup-feedback.md");
    assert!(
        feedback.contains("(worker) on this input is dead")
            && feedback.contains("exited with status 3"),
        "{feedback}"
    );
    let task_json: Value = serde_json::from_str(&ws.mark("backup-task.json")).unwrap();
    assert_eq!(task_json["reason"], "fallback");
    assert_eq!(task_json["fallback_of"][0]["task"], dead_worker["task"]);
    assert_eq!(task_json["fallback_of"][0]["agent"], "worker");
    assert!(
        task_json["fallback_of"][0]["error"]
            .as_str()
            .unwrap()
            .contains("exited with status 3"),
        "{task_json}"
    );

    // Then the person: the backup task is escalated, and the join waits.
    let escalated = ws.records("task.escalated");
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0]["task"], backup["task"]);
    assert!(join_files(&ws).is_empty(), "the join waits for the person");
    let status = ws.status_json();
    let id = backup["task"].as_str().unwrap();
    assert_eq!(status["escalated"][0]["id"], id, "{status}");
    let human = stdout(&ws.baton(&["status"]));
    assert!(
        human.contains("escalated to a person") && human.contains(&format!("baton resolve {id}")),
        "{human}"
    );
    let log = stdout(&ws.baton(&["log"]));
    assert!(
        log.contains("fallback") && log.contains("escalated"),
        "{log}"
    );

    // The catalog says who falls back to whom.
    let out = ws.baton(&["agents", "--json"]);
    let catalog: Value = serde_json::from_slice(&out.stdout).unwrap();
    let worker = catalog["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "worker")
        .unwrap();
    assert_eq!(worker["fallback"], serde_json::json!(["backup", "human"]));

    // The person supplies the section.
    let mine = ws.root.with_file_name("p2-by-hand.md");
    fs::write(&mine, "part 2, done by hand\n").unwrap();
    let arg = format!("sections/p2.md={}", mine.display());
    let out = ws.baton(&["resolve", &id[..8], "--file", &arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("committed sections/p2.md as human"),
        "{}",
        text(&out)
    );
    assert_eq!(ws.read("sections/p2.md"), "part 2, done by hand\n");
    let artifact = ws
        .records("artifact")
        .into_iter()
        .find(|a| a["path"] == "sections/p2.md")
        .expect("journalled");
    assert_eq!(
        (&artifact["by"], &artifact["task"]),
        (&Value::from("human"), &Value::from(id))
    );
    // Resolved once: a second time is refused, naming what the task is.
    fails_with(
        &ws.baton(&["resolve", id, "--file", &arg]),
        2,
        "is done, not escalated",
    );

    // The join runs once, counting the person's section in the dead worker's place.
    ws.run_once(0);
    ws.run_once(0);
    let joins = join_files(&ws);
    assert_eq!(joins.len(), 1, "the join ran once");
    let children = joins[0]["children"].as_array().unwrap();
    assert_eq!(children.len(), 3);
    let p2 = children
        .iter()
        .find(|c| c["fallback_of"] == dead_worker["task"])
        .expect("part 2 reported by its fallback");
    assert_eq!(p2["status"], "done");
    assert_eq!(p2["agent"], "backup");
    assert_eq!(p2["outputs"][0], "sections/p2.md");
    assert!(
        children.iter().all(|c| c["status"] == "done"),
        "{children:?}"
    );
}

#[test]
fn an_escalated_task_is_retried_or_cancelled_by_a_person() {
    let ws = TestWorkspace::marked(
        r#"
[agents.writer]
on = ["briefs/*.md"]
run = ["agents/writer.sh"]
writes = ["drafts"]
retries = 0
fallback = ["human"]
"#,
    )
    .agent(
        "writer",
        r#"set -eu
name=$(basename "$BATON_INPUT")
# The first attempt on each brief fails.
if [ ! -e "$MARKS/$name.tried" ]; then touch "$MARKS/$name.tried"; exit 1; fi
mkdir -p "$BATON_OUT/drafts"; cp "$BATON_INPUT" "$BATON_OUT/drafts/$name""#,
    );
    ws.publish("briefs/a.md", "# A\n");
    ws.publish("briefs/b.md", "# B\n");
    ws.run_once(1);
    let status = ws.status_json();
    let escalated = status["escalated"].as_array().unwrap();
    assert_eq!(escalated.len(), 2, "{status}");
    let id_of = |name: &str| {
        escalated
            .iter()
            .find(|e| e["input"] == format!("briefs/{name}"))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, b) = (id_of("a.md"), id_of("b.md"));

    // Retried: the same agent, a fresh retry budget; done.
    let out = ws.baton(&["retry", &a]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Cancelled: dead, and said so.
    let out = ws.baton(&["cancel", &b]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    ws.run_once(0);
    assert_eq!(ws.read("drafts/a.md"), "# A\n");
    assert!(!ws.path("drafts/b.md").exists());
    let status = ws.status_json();
    assert!(
        status["escalated"].as_array().unwrap().is_empty(),
        "{status}"
    );
    let dead = &status["dead"][0];
    assert_eq!(dead["id"], b.as_str());
    assert_eq!(dead["error"], "cancelled by human");

    // A dead task cannot be resolved: it is not waiting for anyone.
    let mine = ws.root.with_file_name("b.md");
    fs::write(&mine, "# B by hand\n").unwrap();
    let arg = format!("drafts/b.md={}", mine.display());
    fails_with(
        &ws.baton(&["resolve", &b, "--file", &arg]),
        2,
        "is dead, not escalated",
    );
    assert!(!ws.path("drafts/b.md").exists());
}

#[test]
fn resolve_checks_every_file_before_publishing_any() {
    let ws = TestWorkspace::new(
        "[agents.writer]\non = [\"briefs/*.md\"]\nrun = \"exit 1\"\nwrites = [\"drafts\"]\nretries = 0\nfallback = [\"human\"]\n",
    );
    ws.publish("briefs/a.md", "# A\n");
    ws.run_once(1);
    let id = task_of(&ws, "writer")["task"].as_str().unwrap().to_string();
    let good = ws.root.with_file_name("good.md");
    fs::write(&good, "fine\n").unwrap();
    let good_arg = format!("drafts/a.md={}", good.display());
    for (bad, says) in [
        (
            format!("nowhere/x.md={}", good.display()),
            "not an artifact path",
        ),
        (
            "drafts/b.md=/no/such/file".to_string(),
            "cannot read /no/such/file",
        ),
        ("drafts/b.md".to_string(), "expected DEST=SRC"),
        (good_arg.clone(), "is given twice"),
    ] {
        let out = ws.baton(&["resolve", &id, "--file", &good_arg, "--file", &bad]);
        assert_ne!(out.status.code(), Some(0), "{bad}: {}", text(&out));
        assert!(stderr(&out).contains(says), "{bad}: {}", text(&out));
        assert!(!ws.path("drafts/a.md").exists(), "{bad}: nothing published");
    }
    // An agent (BATON_TASK set) cannot resolve it as a person.
    let out = ws
        .command(&["resolve", &id, "--file", &good_arg])
        .env("BATON_TASK", "t-000000000000")
        .output()
        .unwrap();
    fails_with(&out, 2, "a person resolves an escalated task, not an agent");
    assert!(!ws.path("drafts/a.md").exists());
    assert_eq!(ws.status_json()["escalated"][0]["id"], id.as_str());
}

#[test]
fn a_fallback_cycle_is_a_config_error_naming_the_line() {
    let ws = TestWorkspace::new(
        "[agents.a]\nrun = \"true\"\nfallback = [\"b\"]\n[agents.b]\nrun = \"true\"\nfallback = [\"a\"]\n",
    );
    let out = ws.baton(&["status"]);
    fails_with(
        &out,
        2,
        "baton.toml:6:13: agent `b`: `fallback` names `a`, which leads back",
    );
    assert!(stderr(&out).contains("(a → b → a)"), "{}", text(&out));
}

#[test]
fn a_running_daemon_runs_the_join_once_a_person_resolves_the_escalated_task() {
    let ws = escalating_team();
    let daemon = ws.daemon();
    ws.publish("briefs/job.md", "# Job\n");
    let limit = std::time::Duration::from_secs(20);
    wait_for("the task to be escalated", limit, || {
        !ws.records("task.escalated").is_empty()
    });
    let id = ws.records("task.escalated")[0]["task"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(join_files(&ws).is_empty(), "the join waits for the person");
    let mine = ws.root.with_file_name("p2-by-hand.md");
    fs::write(&mine, "part 2, by hand\n").unwrap();
    let arg = format!("sections/p2.md={}", mine.display());
    let out = ws.baton(&["resolve", &id, "--file", &arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for("the join to run", limit, || join_files(&ws).len() == 1);
    daemon.stop();
    assert_eq!(join_files(&ws).len(), 1);
    assert_eq!(queued_with_reason(&ws, "join").len(), 1);
}
