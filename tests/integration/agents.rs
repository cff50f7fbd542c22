//! DESIGN §3: the agent protocol: environment, timeouts, retries, scope, concurrency, and a burst.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::harness::*;

#[test]
fn a_hung_agent_and_its_grandchild_are_killed_at_the_timeout() {
    let ws = TestWorkspace::marked(
        r#"
[agents.hang]
on = ["briefs/*.md"]
run = ["agents/hang.sh"]
timeout = "1s"
retries = 0
"#,
    )
    .agent(
        "hang",
        r#"sh -c 'trap "" TERM; sleep 600' &
echo $! > "$MARKS/grandchild.pid"
sleep 600"#,
    );
    ws.write("briefs/a.md", "x\n");
    let started = Instant::now();
    ws.run_once(1);
    // SIGTERM is ignored by the grandchild, so the SIGKILL 5 s later must have got it.
    assert!(started.elapsed() < Duration::from_secs(30));
    let pid: i32 = ws.mark("grandchild.pid").trim().parse().unwrap();
    assert!(
        !process_alive(pid),
        "the grandchild {pid} survived the timeout"
    );
    let dead = ws.finished("dead");
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("timed out after 1s"),
        "{dead:?}"
    );
}

#[test]
fn failing_agents_are_retried_with_backoff_then_dead_with_input_and_logs_kept() {
    let ws = TestWorkspace::new(
        r#"
[agents.flaky]
on = ["briefs/*.md"]
run = ["agents/flaky.sh"]
writes = ["drafts"]
retries = 2
backoff = "100ms"
"#,
    )
    .agent("flaky", r#"echo "attempt $BATON_ATTEMPT failing" >&2; mkdir -p "$BATON_OUT/drafts"; echo partial > "$BATON_OUT/drafts/x.md"; exit 3"#);
    ws.write("briefs/a.md", "x\n");
    let started = Instant::now();
    ws.run_once(1);
    // Backoff 100 ms, then 200 ms.
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(ws.records("task.started").len(), 3);
    assert_eq!(ws.finished("failed").len(), 2);
    let dead = ws.finished("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0]["error"],
        "exited with status 3 (attempt 3; 2 retries spent)"
    );
    assert_eq!(ws.read("briefs/a.md"), "x\n");
    assert!(
        ws.files_in("drafts").is_empty(),
        "a failed attempt's output was committed"
    );
    let task = dead[0]["task"].as_str().unwrap();
    for attempt in 1..=3 {
        let log = ws.read(&format!(".baton/runs/{task}/{attempt}/stderr.log"));
        assert_eq!(log, format!("{SANDBOX_LINE}attempt {attempt} failing\n"));
        assert!(
            ws.path(&format!(".baton/runs/{task}/{attempt}/out/drafts/x.md"))
                .exists()
        );
    }
    let logs = ws.baton(&["logs", &task[..6]]);
    assert!(
        stdout(&logs).contains("attempt 3 failing"),
        "{}",
        text(&logs)
    );
    let status = stdout(&ws.baton(&["status"]));
    assert!(
        status.contains("dead (1)") && status.contains("exited with status 3"),
        "{status}"
    );
    let json = ws.status_json();
    assert_eq!(json["dead"][0]["id"], task);
}

#[test]
fn a_scope_violation_commits_nothing() {
    let ws = TestWorkspace::new(
        r#"
[agents.sneaky]
on = ["briefs/*.md"]
run = ["agents/sneaky.sh"]
writes = ["drafts"]
retries = 0
"#,
    )
    .agent(
        "sneaky",
        r#"mkdir -p "$BATON_OUT/drafts" "$BATON_OUT/published"
echo fine > "$BATON_OUT/drafts/ok.md"
echo sneaky > "$BATON_OUT/published/not-mine.md""#,
    );
    ws.write("briefs/a.md", "x\n");
    ws.run_once(1);
    assert!(ws.files_in("drafts").is_empty());
    assert!(ws.files_in("published").is_empty());
    let dead = ws.finished("dead");
    let error = dead[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("scope violation: `published/not-mine.md` is in stage `published`, which agent `sneaky` may not write"),
        "{error}"
    );
    assert!(ws.records("artifact").iter().all(|r| r["by"] != "sneaky"));
}

#[test]
fn the_agent_gets_the_protocol_environment_and_argv_placeholders() {
    let ws = TestWorkspace::new(
        r#"
[agents.env]
on = ["briefs/*.md"]
run = ["agents/env.sh", "{input}", "{task}"]
writes = ["drafts"]
"#,
    )
    .agent(
        "env",
        r#"set -eu
mkdir -p "$BATON_OUT/drafts"
{
  echo "args=$1 $2"
  echo "input=$BATON_INPUT task=$BATON_TASK parent=[$BATON_PARENT] depth=$BATON_DEPTH agent=$BATON_AGENT attempt=$BATON_ATTEMPT join=$BATON_JOIN"
  echo "cwd=$(pwd)"
  echo "baton=$(command -v baton)"
  test -f "$BATON_TASK_FILE" && echo "task_file=ok"
  read line || echo "stdin=empty"
} > "$BATON_OUT/drafts/env.md"
printf 'summary = "wrote env"\ncost = 0.5\n' > "$BATON_OUT/result.toml""#,
    );
    ws.write("briefs/a b.md", "x\n");
    ws.run_once(0);
    let env = ws.read("drafts/env.md");
    let task = ws.records("task.queued")[0]["task"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(env.contains(&format!("args=briefs/a b.md {task}")), "{env}");
    assert!(
        env.contains(&format!(
            "input=briefs/a b.md task={task} parent=[] depth=0 agent=env attempt=1 join=0"
        )),
        "{env}"
    );
    assert!(env.contains(&format!("cwd={}", ws.root.display())), "{env}");
    assert!(
        env.contains(&format!("baton={}", Path::new(BATON).display())),
        "{env}"
    );
    assert!(
        env.contains("task_file=ok") && env.contains("stdin=empty"),
        "{env}"
    );
    let done = &ws.finished("done")[0];
    assert_eq!(done["result"]["summary"], "wrote env");
    assert_eq!(done["outputs"][0]["path"], "drafts/env.md");
}

#[test]
fn a_pipeline_passes_attribution_and_depth_down_the_chain() {
    let ws = TestWorkspace::new(
        r#"
[agents.writer]
on = ["briefs/*.md"]
run = ["agents/step.sh", "drafts"]
writes = ["drafts"]

[agents.reviewer]
on = ["drafts/*.md"]
run = ["agents/step.sh", "reviews"]
writes = ["reviews"]
"#,
    )
    .agent(
        "step",
        r#"set -eu
mkdir -p "$BATON_OUT/$1"
{ cat "$BATON_INPUT"; echo "$BATON_AGENT depth=$BATON_DEPTH parent=$BATON_PARENT"; } > "$BATON_OUT/$1/$(basename "$BATON_INPUT")""#,
    );
    let dropped = ws.baton(&[
        "drop",
        "--stage",
        "briefs",
        ws.path("agents/step.sh").to_str().unwrap(),
    ]);
    assert_eq!(dropped.status.code(), Some(0), "{}", text(&dropped));
    ws.write("note.md", "# note\n");
    let dropped = ws.baton(&["drop", ws.path("note.md").to_str().unwrap()]);
    assert_eq!(
        stdout(&dropped).trim(),
        format!("dropped {} → briefs/note.md", ws.path("note.md").display())
    );
    ws.run_once(0);
    let writer_task = ws
        .records("task.queued")
        .into_iter()
        .find(|r| r["agent"] == "writer" && r["input"] == "briefs/note.md")
        .unwrap();
    let review = ws.read("reviews/note.md");
    assert!(review.contains("writer depth=0 parent=\n"), "{review}");
    assert!(
        review.contains(&format!(
            "reviewer depth=1 parent={}",
            writer_task["task"].as_str().unwrap()
        )),
        "{review}"
    );
    let who = stdout(&ws.baton(&["who", "reviews/note.md"]));
    assert!(
        who.contains("reviewer") && who.contains("on drafts/note.md"),
        "{who}"
    );
    let who = stdout(&ws.baton(&["who", "briefs/note.md"]));
    assert!(who.contains("human"), "{who}");
    // Unknown to the journal: say whether the file is there at all.
    ws.write("reviews/by-hand.md", "x\n");
    fails_with(
        &ws.baton(&["who", "reviews/by-hand.md"]),
        1,
        "written outside baton",
    );
    fails_with(&ws.baton(&["who", "reviews/missing.md"]), 1, "no such file");
}

#[test]
fn a_thousand_briefs_dropped_at_once_are_all_done() {
    let ws = TestWorkspace::new(
        r#"
[agents.noop]
on = ["briefs/*.md"]
run = ["true"]
concurrency = 4
"#,
    );
    let _daemon = ws.daemon();
    let staging = ws.path("incoming");
    fs::create_dir_all(&staging).unwrap();
    let n = 1000;
    for i in 0..n {
        fs::write(staging.join(format!("b{i:04}.md")), format!("brief {i}\n")).unwrap();
    }
    for i in 0..n {
        let name = format!("b{i:04}.md");
        fs::rename(staging.join(&name), ws.path(&format!("briefs/{name}"))).unwrap();
    }
    wait_for("1000 tasks done", Duration::from_secs(120), || {
        ws.finished("done").len() >= n
    });
    let queued = ws.records("task.queued");
    assert_eq!(queued.len(), n);
    let status = ws.status_json();
    assert_eq!(status["done"], n);
}

#[test]
fn an_agent_never_runs_more_tasks_at_once_than_its_concurrency() {
    let ws = TestWorkspace::marked(
        r#"
[agents.busy]
on = ["briefs/*.md"]
run = ["agents/busy.sh"]
concurrency = 2
"#,
    )
    .agent(
        "busy",
        r#"set -eu
mkdir -p "$MARKS/running"
touch "$MARKS/running/$BATON_TASK"
ls "$MARKS/running" | wc -l >> "$MARKS/overlap.$BATON_TASK"
sleep 0.15
rm "$MARKS/running/$BATON_TASK""#,
    );
    for i in 0..8 {
        ws.write(&format!("briefs/b{i}.md"), &format!("{i}\n"));
    }
    ws.run_once(0);
    let seen: Vec<usize> = fs::read_dir(&ws.marks)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("overlap."))
        .map(|e| {
            fs::read_to_string(e.path())
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(seen.len(), 8);
    assert!(
        seen.iter().all(|&n| n <= 2),
        "more than 2 at once: {seen:?}"
    );
    assert!(seen.contains(&2), "never ran 2 at once: {seen:?}");
}
