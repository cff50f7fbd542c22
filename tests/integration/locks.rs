//! DESIGN §6: `baton write`, `read` and `lock` under the path locks.

use std::fs;
use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::harness::*;

/// The kernel function a process sleeps in (`/proc/PID/wchan`).
fn wchan(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

#[test]
fn write_read_and_lock_share_artifacts_under_the_path_lock() {
    let ws = TestWorkspace::new("[workspace]\nstages = [\"briefs\", \"drafts\"]\n");
    let write = |content: &str| {
        let mut child = ws
            .command(&["write", "drafts/notes.md"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        child
    };
    let mut first = write("v1\n");
    assert_eq!(wait_exit(&mut first, Duration::from_secs(30)), Some(0));
    assert_eq!(stdout(&ws.baton(&["read", "drafts/notes.md"])), "v1\n");
    let artifact = ws.records("artifact").pop().unwrap();
    assert_eq!(artifact["path"], "drafts/notes.md");
    assert_eq!(artifact["by"], "human");

    // Under `baton lock`, CMD's own read and write go ahead: no deadlock.
    let mut nested = ws
        .command(&[
            "lock",
            "drafts/notes.md",
            "--",
            "sh",
            "-c",
            &format!("{BATON} read drafts/notes.md > seen-nested && echo v2 | {BATON} write drafts/notes.md"),
        ])
        .current_dir(&ws.root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(wait_exit(&mut nested, Duration::from_secs(30)), Some(0));
    assert_eq!(ws.read("seen-nested"), "v1\n");
    assert_eq!(ws.read("drafts/notes.md"), "v2\n");

    // While another process holds the lock, a writer waits for it.
    // (Bounded, and stopped on drop, so a failing test leaves nothing behind.)
    let mut holder = Daemon::of(
        ws
            .command(&[
                "lock",
                "drafts/notes.md",
                "--",
                "sh",
                "-c",
                "touch locked; i=0; while [ ! -e release ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i+1)); done; cat drafts/notes.md > seen-held",
            ])
            .current_dir(&ws.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the lock to be taken", Duration::from_secs(30), || {
        ws.path("locked").exists()
    });
    let mut writer = write("v3\n");
    wait_for(
        "the writer to wait for the lock",
        Duration::from_secs(30),
        || wchan(writer.id()).contains("lock"),
    );
    assert_eq!(ws.read("drafts/notes.md"), "v2\n");
    fs::write(ws.path("release"), "").unwrap();
    assert_eq!(
        wait_exit(&mut holder.child, Duration::from_secs(30)),
        Some(0)
    );
    assert_eq!(wait_exit(&mut writer, Duration::from_secs(30)), Some(0));
    assert_eq!(
        ws.read("seen-held"),
        "v2\n",
        "the writer got in under the lock"
    );
    assert_eq!(ws.read("drafts/notes.md"), "v3\n");

    // Errors: not an artifact path (2), nothing to read (1); CMD's status passes through.
    fails_with(&ws.baton(&["write", "notes.md"]), 2, "not an artifact path");
    let out = ws.baton(&["read", "drafts/missing.md"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = ws.baton(&["lock", "drafts/notes.md", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
}

#[test]
fn agents_update_a_shared_artifact_in_turn_attributed_to_their_tasks() {
    // A `baton write` inside a task is staged and committed when the task ends; one
    // whose artifact changed meanwhile is a stale write, and the attempt runs again.
    let ws = TestWorkspace::marked(
        r#"
[workspace]
stages = ["briefs", "drafts", "reviews"]

[agents.noter]
on = ["briefs/*.md"]
run = ["agents/noter.sh"]
writes = ["drafts"]
concurrency = 4
retries = 30
backoff = "10ms"

[agents.sneaky]
on = ["briefs/sneaky.md"]
run = ["agents/sneaky.sh"]
writes = ["drafts"]

[agents.counter]
on = ["drafts/log.md"]
run = ["true"]
"#,
    )
    // A read-modify-write under the lock: with four at once, no line may be lost.
    .agent(
        "noter",
        r#"set -eu
baton lock drafts/log.md -- sh -c '
  { baton read drafts/log.md 2>/dev/null || true; echo "$BATON_INPUT"; } > "$BATON_OUT/../log.next"
  baton write drafts/log.md < "$BATON_OUT/../log.next"'"#,
    )
    .agent(
        "sneaky",
        r#"echo nope | baton write reviews/x.md 2> "$MARKS/sneaky.err"
echo $? > "$MARKS/sneaky.code""#,
    );
    for i in 0..6 {
        ws.write(&format!("briefs/b{i}.md"), &format!("{i}\n"));
    }
    ws.write("briefs/sneaky.md", "x\n");
    ws.run_once(0);
    let mut lines: Vec<String> = ws.read("drafts/log.md").lines().map(String::from).collect();
    lines.sort();
    let mut want: Vec<String> = (0..6).map(|i| format!("briefs/b{i}.md")).collect();
    want.push("briefs/sneaky.md".into());
    want.sort();
    assert_eq!(lines, want);

    // Each version is attributed to the noter task that wrote it, and routes onward with
    // that task as parent.
    let noter_tasks: Vec<String> = ws
        .records("task.queued")
        .into_iter()
        .filter(|r| r["agent"] == "noter")
        .map(|r| r["task"].as_str().unwrap().to_string())
        .collect();
    let versions: Vec<Value> = ws
        .records("artifact")
        .into_iter()
        .filter(|r| r["path"] == "drafts/log.md")
        .collect();
    assert_eq!(versions.len(), 7);
    assert!(
        versions.iter().all(|v| v["by"] == "noter"
            && noter_tasks.contains(&v["task"].as_str().unwrap().to_string())),
        "{versions:?}"
    );
    let counted: Vec<Value> = ws
        .records("task.queued")
        .into_iter()
        .filter(|r| r["agent"] == "counter")
        .collect();
    assert!(!counted.is_empty());
    assert!(
        counted
            .iter()
            .all(|r| noter_tasks.contains(&r["parent"].as_str().unwrap_or_default().to_string())),
        "{counted:?}"
    );
    let who = stdout(&ws.baton(&["who", "drafts/log.md"]));
    assert!(who.contains("noter"), "{who}");

    // Outside its `writes`, a write is refused (exit 2) and nothing is written.
    assert_eq!(ws.mark("sneaky.code").trim(), "2");
    assert!(
        ws.mark("sneaky.err")
            .contains("may not write to stage `reviews`")
    );
    assert!(!ws.path("reviews/x.md").exists());
}

#[test]
fn a_write_inside_a_task_whose_artifact_changed_before_its_commit_is_retried_not_lost() {
    let ws = TestWorkspace::marked(
        r#"
[workspace]
stages = ["briefs", "drafts"]

[agents.noter]
on = ["briefs/*.md"]
run = ["agents/noter.sh"]
writes = ["drafts"]
retries = 1
backoff = "10ms"
"#,
    )
    .agent(
        "noter",
        r#"set -eu
{ baton read drafts/log.md; echo "$BATON_INPUT"; } | baton write drafts/log.md
touch "$MARKS/staged.$BATON_ATTEMPT"
while [ ! -f "$BATON_WORKSPACE/go" ]; do sleep 0.02; done"#,
    );
    ws.publish("drafts/log.md", "first\n");
    let _daemon = ws.daemon();
    ws.publish("briefs/a.md", "a\n");
    wait_for(
        "the first attempt to stage its write",
        Duration::from_secs(10),
        || ws.marks.join("staged.1").exists(),
    );
    let mut person = ws
        .command(&["write", "drafts/log.md"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    person
        .stdin
        .take()
        .unwrap()
        .write_all(b"first\nby a person\n")
        .unwrap();
    assert!(person.wait().unwrap().success());
    fs::write(ws.path("go"), "").unwrap();
    wait_for("the task to be done", Duration::from_secs(10), || {
        !ws.finished("done").is_empty()
    });
    let failed = ws.finished("failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("stale write: drafts/log.md changed"),
        "{error}"
    );
    assert_eq!(
        ws.read("drafts/log.md"),
        "first\nby a person\nbriefs/a.md\n"
    );
}
