//! `baton logs` (issue 11): by task or path, per attempt, the last lines, live; and the
//! agent's output capped per attempt.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use super::fixtures::*;
use super::harness::*;

#[test]
fn logs_takes_a_path_and_shows_the_latest_task_on_it() {
    let ws = copier();
    ws.write("briefs/a.md", "# A\n");
    ws.run_once(0);
    let task = ws.records("task.queued")[0]["task"]
        .as_str()
        .unwrap()
        .to_string();
    for target in ["drafts/a.md", "briefs/a.md", task.as_str()] {
        let out = ws.baton(&["logs", target]);
        assert_eq!(out.status.code(), Some(0), "{target}: {}", text(&out));
        assert!(stdout(&out).starts_with(&task), "{target}: {}", text(&out));
        assert!(stdout(&out).contains("── done"), "{target}: {}", text(&out));
    }
}

#[test]
fn each_attempt_shows_its_own_ending_and_tail_its_last_lines() {
    let ws = TestWorkspace::new(
        "[agents.flaky]\non = [\"briefs/*.md\"]\nrun = [\"agents/flaky.sh\"]\nretries = 1\nbackoff = \"50ms\"\n",
    )
    .agent(
        "flaky",
        r#"for i in 1 2 3 4 5; do echo "attempt $BATON_ATTEMPT line $i"; done; exit $((BATON_ATTEMPT + 2))"#,
    );
    ws.write("briefs/a.md", "x\n");
    ws.run_once(1);
    let first = stdout(&ws.baton(&["logs", "briefs/a.md", "--attempt", "1"]));
    assert!(first.contains("── failed: exited with status 3"), "{first}");
    assert!(!first.contains("status 4"), "{first}");
    let last = stdout(&ws.baton(&["logs", "briefs/a.md"]));
    assert!(
        last.contains("── dead: exited with status 4 (attempt 2; 1 retries spent)"),
        "{last}"
    );
    let tail = stdout(&ws.baton(&["logs", "briefs/a.md", "--tail", "2"]));
    assert!(
        tail.contains("attempt 2 line 4\nattempt 2 line 5\n"),
        "{tail}"
    );
    assert!(!tail.contains("line 3"), "{tail}");
    let out = ws.baton(&["logs", "briefs/a.md", "--attempt", "3"]);
    fails_with(&out, 1, "has no attempt 3 (attempts: 1 to 2)");
}

#[test]
fn logs_follow_prints_what_the_agent_writes_until_it_ends() {
    let ws = TestWorkspace::new(
        "[agents.talk]\non = [\"briefs/*.md\"]\nrun = [\"agents/talk.sh\"]\n",
    )
    .agent(
        "talk",
        r#"echo first; while [ ! -f "$BATON_WORKSPACE/go" ]; do sleep 0.05; done; echo second >&2; echo third"#,
    );
    let _daemon = ws.daemon();
    ws.publish("briefs/a.md", "x\n");
    wait_for("the agent's first line", Duration::from_secs(10), || {
        ws.records("task.started").len() == 1
            && fs::read_dir(ws.path(".baton/runs"))
                .ok()
                .and_then(|mut d| d.next())
                .is_some_and(|task| {
                    fs::read_to_string(task.unwrap().path().join("1/stdout.log"))
                        .is_ok_and(|s| s.contains("first"))
                })
    });
    let follower = ws
        .command(&["logs", "briefs/a.md", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    fs::write(ws.path("go"), "").unwrap();
    let out = follower.wait_with_output().unwrap();
    let shown = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for line in ["first", "second", "third", "── done"] {
        assert!(shown.contains(line), "{line} missing: {shown}");
    }
}

#[test]
fn an_agents_output_past_max_log_bytes_is_cut_with_a_marker() {
    let ws = TestWorkspace::new(
        "[agents.loud]\non = [\"briefs/*.md\"]\nrun = [\"agents/loud.sh\"]\nmax_log_bytes = \"100KiB\"\n",
    )
    .agent("loud", "head -c 300000 /dev/zero | tr '\\0' x; echo; echo done-talking >&2");
    ws.write("briefs/a.md", "x\n");
    ws.run_once(0);
    let task = ws.records("task.queued")[0]["task"]
        .as_str()
        .unwrap()
        .to_string();
    let log = fs::read_to_string(ws.path(&format!(".baton/runs/{task}/1/stdout.log"))).unwrap();
    assert!(
        log.starts_with(&"x".repeat(102_400)),
        "kept the first 100 KiB"
    );
    assert!(
        log.ends_with(
            "\n[baton: 197601 more bytes of stdout were cut here: max_log_bytes = 102400]\n"
        ),
        "{}",
        &log[log.len() - 120..]
    );
    let err = fs::read_to_string(ws.path(&format!(".baton/runs/{task}/1/stderr.log"))).unwrap();
    assert_eq!(err, format!("{SANDBOX_LINE}done-talking\n"));
}
