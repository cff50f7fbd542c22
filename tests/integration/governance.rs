//! Issue 15, governed delegation: failure classes (`fatal_exits`) and the agent catalog
//! (`description`, `baton agents`, task.json's `agents`, MCP `list_agents`).

use std::fs;
use std::time::Duration;

use serde_json::Value;

use super::harness::*;

#[test]
fn a_fatal_exit_ends_the_task_dead_at_once_with_its_retries_unspent() {
    let ws = TestWorkspace::marked(
        r#"
[agents.parser]
on = ["briefs/*.md"]
run = ["agents/parser.sh"]
writes = ["drafts"]
retries = 3
backoff = "10ms"
fatal_exits = [64, 65]
"#,
    )
    .agent(
        "parser",
        r#"echo run >> "$MARKS/$(basename "$BATON_INPUT").runs"
case "$BATON_INPUT" in
*bad*) echo "cannot parse the brief" >&2; exit 65 ;;
*flaky*) exit 75 ;;
esac"#,
    );
    ws.publish("briefs/bad.md", "# ?\n");
    ws.publish("briefs/flaky.md", "# later\n");
    ws.run_once(1);
    // The fatal exit ran once and no more.
    assert_eq!(ws.mark("bad.md.runs").lines().count(), 1);
    let dead = ws.finished("dead");
    let bad = dead
        .iter()
        .find(|f| f["error"].as_str().unwrap().contains("65"))
        .expect("the fatal task is dead");
    assert_eq!(bad["exit"], 65);
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("one of its `fatal_exits`: not retried"),
        "{bad}"
    );
    assert_eq!(bad["attempt"], 1);
    // 75 (EX_TEMPFAIL) stays retryable: every retry was spent.
    assert_eq!(ws.mark("flaky.md.runs").lines().count(), 4);
    let status = stdout(&ws.baton(&["status"]));
    assert!(status.contains("fatal_exits"), "{status}");
}

#[test]
fn fatal_exits_refuse_75_and_codes_out_of_range() {
    for code in ["75", "0", "300"] {
        let ws = TestWorkspace::new(&format!(
            "[agents.a]\non = []\nrun = [\"true\"]\nwrites = [\"drafts\"]\nfatal_exits = [{code}]\n"
        ));
        let out = ws.baton(&["status"]);
        assert_eq!(out.status.code(), Some(2), "{code}: {}", text(&out));
        let said = stderr(&out);
        assert!(
            said.contains("fatal_exits") && said.contains("baton.toml:5"),
            "{said}"
        );
    }
}

const TEAM: &str = r#"
[workspace]
stages = ["briefs", "parts", "sections"]

[agents.manager]
description = "Splits a request into parts and assembles the sections"
on = ["briefs/*.md"]
run = ["agents/manager.sh"]
writes = ["parts"]
delegates_to = ["legal", "writer"]

[agents.writer]
description = "Writes one section from a part"
on = []
run = ["true"]
writes = ["sections"]
timeout = "5m"
fatal_exits = [64]

[agents.legal]
on = []
run = ["true"]
writes = ["sections"]

[agents.auditor]
description = "Not for the manager"
on = []
run = ["true"]
writes = ["sections"]
"#;

#[test]
fn the_catalog_is_in_task_json_in_baton_agents_and_over_mcp() {
    let ws =
        TestWorkspace::marked(TEAM).agent("manager", r#"cp "$BATON_TASK_FILE" "$MARKS/task.json""#);
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    // The manager sees the agents it may delegate to, and only those.
    let task: Value = serde_json::from_str(&ws.mark("task.json")).unwrap();
    let agents = task["agents"].as_array().unwrap();
    let names: Vec<&str> = agents.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["legal", "writer"]);
    let writer = &agents[1];
    assert_eq!(writer["description"], "Writes one section from a part");
    assert_eq!(writer["writes"], serde_json::json!(["sections"]));
    assert_eq!(writer["on"], serde_json::json!([]));
    assert_eq!(writer["timeout_ms"], 300_000);
    assert_eq!(writer["fatal_exits"], serde_json::json!([64]));
    assert_eq!(agents[0]["description"], Value::Null);

    // `baton agents --json`: every agent, with its load.
    let out = ws.baton(&["agents", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = doc["agents"].as_array().unwrap();
    assert_eq!(all.len(), 4);
    let manager = all.iter().find(|a| a["name"] == "manager").unwrap();
    assert_eq!(
        manager["delegates_to"],
        serde_json::json!(["legal", "writer"])
    );
    assert_eq!(manager["running"], 0);
    assert_eq!(manager["queued"], 0);
    let text_out = stdout(&ws.baton(&["agents"]));
    assert!(
        text_out.contains("Splits a request into parts"),
        "{text_out}"
    );
    assert!(
        text_out.contains("delegates to legal, writer"),
        "{text_out}"
    );
    assert!(text_out.contains("fatal exits 64"), "{text_out}");

    // The same over MCP.
    let (_, replies) = mcp_exchange(
        &ws,
        &[
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_agents","arguments":{}}}"#,
        ],
    );
    let reply = replies
        .into_iter()
        .find(|r| r["id"] == 2)
        .expect("list_agents answered");
    let listed = reply["result"]["structuredContent"]["agents"]
        .as_array()
        .unwrap();
    assert_eq!(listed, all, "MCP and `baton agents` say the same");
    let _ = fs::remove_file(ws.marks.join("task.json"));
}

#[test]
fn expects_fails_an_attempt_that_wrote_nothing_and_the_next_reads_why() {
    let ws = TestWorkspace::marked(
        r#"
[agents.writer]
on = ["briefs/*.md"]
run = ["agents/writer.sh"]
writes = ["drafts"]
retries = 2
backoff = "10ms"
expects = ["drafts/**/*.md"]
"#,
    )
    .agent(
        "writer",
        r##"set -eu
echo "$BATON_ATTEMPT" >> "$MARKS/attempts"
if [ -n "$BATON_FEEDBACK" ]; then cp "$BATON_FEEDBACK" "$MARKS/feedback-$BATON_ATTEMPT"; fi
case "$BATON_ATTEMPT" in
1) exit 0 ;;                                      # silent completion: wrote nothing
2) mkdir -p "$BATON_OUT/drafts"; echo x > "$BATON_OUT/drafts/notes.txt" ;;  # the wrong thing
*) mkdir -p "$BATON_OUT/drafts"; echo "# Draft" > "$BATON_OUT/drafts/job.md" ;;
esac"##,
    );
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    assert_eq!(ws.mark("attempts"), "1\n2\n3\n");
    assert_eq!(ws.read("drafts/job.md"), "# Draft\n");
    assert!(
        !ws.path("drafts/notes.txt").exists(),
        "a failed attempt commits nothing"
    );
    let failed = ws.finished("failed");
    assert_eq!(failed.len(), 2);
    for f in &failed {
        assert!(
            f["error"]
                .as_str()
                .unwrap()
                .contains("no output matching drafts/**/*.md (`expects`)"),
            "{f}"
        );
    }
    // The first attempt had no feedback; each later one read every earlier failure.
    assert!(!ws.marks.join("feedback-1").exists());
    let second = ws.mark("feedback-2");
    assert!(
        second.contains("## Attempt 1 failed") && second.contains("no output matching"),
        "{second}"
    );
    let third = ws.mark("feedback-3");
    assert!(
        third.contains("## Attempt 1 failed") && third.contains("## Attempt 2 failed"),
        "{third}"
    );
}

#[test]
fn expects_does_not_fail_a_task_that_delegated_its_work() {
    let ws = TestWorkspace::marked(
        r#"
[agents.manager]
on = ["briefs/job.md"]
run = ["agents/manager.sh"]
writes = ["briefs", "drafts"]
retries = 0
expects = ["drafts/*.md"]

[agents.helper]
on = []
run = ["agents/helper.sh"]
writes = ["drafts"]
"#,
    )
    .agent(
        "manager",
        r#"set -eu
if [ "$BATON_JOIN" = 1 ]; then mkdir -p "$BATON_OUT/drafts"; echo done > "$BATON_OUT/drafts/final.md"; exit 0; fi
"$BATON_BIN" delegate --to helper "$BATON_INPUT" >/dev/null"#,
    )
    .agent("helper", r#"mkdir -p "$BATON_OUT/drafts"; echo part > "$BATON_OUT/drafts/part.md""#);
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    assert_eq!(ws.read("drafts/final.md"), "done\n");
    assert!(
        ws.finished("failed").is_empty(),
        "{:?}",
        ws.finished("failed")
    );
}

#[test]
fn a_check_fails_twice_and_the_third_attempt_passes_after_reading_its_feedback() {
    let ws = TestWorkspace::marked(
        r#"
[agents.writer]
on = ["briefs/*.md"]
run = ["agents/writer.sh"]
writes = ["drafts"]
retries = 2
backoff = "10ms"
checks = [["agents/no-todo.sh", "{out}", "{input}"]]
"#,
    )
    .agent(
        "writer",
        r#"set -eu
mkdir -p "$BATON_OUT/drafts"
failures=0
if [ -n "$BATON_FEEDBACK" ]; then failures=$(grep -c '^## Attempt' "$BATON_FEEDBACK"); fi
if [ "$failures" -ge 2 ]; then echo "all done" > "$BATON_OUT/drafts/job.md"; else echo "TODO write it" > "$BATON_OUT/drafts/job.md"; fi"#,
    )
    .agent(
        "no-todo",
        r#"out=$1
echo "checking $2" >> "$MARKS/checked"
# A check reads the outputs and may not change them.
if touch "$out/drafts/sneaky.md" 2>/dev/null; then echo "check wrote" >> "$MARKS/checked"; fi
if grep -q TODO "$out/drafts/job.md"; then echo "drafts/job.md still says TODO" >&2; exit 1; fi"#,
    );
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    assert_eq!(ws.read("drafts/job.md"), "all done\n");
    assert_eq!(
        ws.mark("checked"),
        "checking briefs/job.md\n".repeat(3),
        "every attempt is checked, and no check could write"
    );
    assert!(!ws.path("drafts/sneaky.md").exists());
    let failed = ws.finished("failed");
    assert_eq!(failed.len(), 2);
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("check `agents/no-todo.sh {out} {input}` exited with status 1: drafts/job.md still says TODO"),
        "{error}"
    );
    let done = ws.finished("done");
    assert_eq!(done[0]["attempt"], 3);
}

#[test]
fn a_rate_limit_holds_starts_to_the_given_rate_and_status_says_so() {
    let ws = TestWorkspace::marked(
        r#"
[agents.caller]
on = ["briefs/*.md"]
run = ["agents/caller.sh"]
writes = ["drafts"]
concurrency = 4
rate = "2/1s"
"#,
    )
    .agent("caller", r#"date +%s.%N >> "$MARKS/starts""#);
    for i in 0..6 {
        ws.publish(&format!("briefs/b{i}.md"), &format!("# {i}\n"));
    }
    let daemon = ws.daemon();
    // While the daemon holds them back, status says why they wait.
    wait_for(
        "status to show rate-limited tasks",
        Duration::from_secs(10),
        || {
            let s = ws.status_json();
            s["agents"][0]["rate_limited"].as_u64().unwrap_or(0) > 0
        },
    );
    wait_for("all six to be done", Duration::from_secs(20), || {
        ws.finished("done").len() == 6
    });
    drop(daemon);
    let mut starts: Vec<f64> = ws
        .mark("starts")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    starts.sort_by(f64::total_cmp);
    assert_eq!(starts.len(), 6);
    // No three starts within one second: the third of any window waits for the first to
    // leave it (a little slack for the agent's own start-up).
    for w in starts.windows(3) {
        assert!(
            w[2] - w[0] >= 0.9,
            "three starts within {:.3} s: {starts:?}",
            w[2] - w[0]
        );
    }
    let text_out = stdout(&ws.baton(&["agents"]));
    assert!(text_out.contains("rate 2/1s"), "{text_out}");
}

#[test]
fn a_bad_rate_is_a_config_error_naming_the_line() {
    let ws = TestWorkspace::new(
        "[agents.a]\non = []\nrun = [\"true\"]\nwrites = [\"drafts\"]\nrate = \"lots\"\n",
    );
    let out = ws.baton(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = stderr(&out);
    assert!(
        said.contains("baton.toml:5") && said.contains("bad `rate` `lots`"),
        "{said}"
    );
}

const NARROW: &str = r#"
[workspace]
stages = ["briefs", "parts", "sections"]

[agents.manager]
on = ["briefs/job.md"]
run = ["agents/manager.sh"]
writes = ["parts", "sections"]
retries = 0

[agents.worker]
on = []
run = ["agents/worker.sh"]
writes = ["sections"]
retries = 0

[agents.narrow]
on = ["briefs/narrow.md"]
run = ["agents/narrow.sh"]
writes = ["parts"]
retries = 0
"#;

#[test]
fn delegate_writes_narrows_the_delegate_and_the_commit_enforces_it() {
    let ws = TestWorkspace::marked(NARROW)
        .agent(
            "manager",
            r#"set -eu
[ "$BATON_JOIN" = 1 ] && exit 0
mkdir -p "$BATON_OUT/parts"
echo "stay in ch1" > "$BATON_OUT/parts/ok.md"
echo "stray" > "$BATON_OUT/parts/stray.md"
"$BATON_BIN" delegate --to worker "$BATON_OUT/parts/ok.md" --writes sections/ch1 >/dev/null
"$BATON_BIN" delegate --to worker "$BATON_OUT/parts/stray.md" --writes sections/ch1 >/dev/null"#,
        )
        .agent("narrow", "true")
        .agent(
            "worker",
            r#"set -eu
cp "$BATON_TASK_FILE" "$MARKS/task-$(basename "$(sed -n 's/^refs = \["\([^"]*\)".*/\1/p' "$BATON_INPUT")")"
mkdir -p "$BATON_OUT/sections/ch1"
case "$(cat "$BATON_INPUT")" in
*ok.md*) echo fine > "$BATON_OUT/sections/ch1/a.md" ;;
*) echo sneaky > "$BATON_OUT/sections/other.md" ;;
esac"#,
        );
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(1); // the stray worker's task is dead
    assert_eq!(ws.read("sections/ch1/a.md"), "fine\n");
    assert!(!ws.path("sections/other.md").exists());
    let dead = ws.finished("dead");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let error = dead[0]["error"].as_str().unwrap();
    assert!(
        error.contains("`sections/other.md` is outside what this task was delegated to write (writes = [sections/ch1])"),
        "{error}"
    );
    // The delegate sees its narrowed scope in task.json, and the journal keeps it.
    let task: Value = serde_json::from_str(&ws.mark("task-ok.md")).unwrap();
    assert_eq!(task["writes"], serde_json::json!(["sections/ch1"]));
    let queued = ws.records("task.queued");
    let narrowed: Vec<&Value> = queued.iter().filter(|q| q["agent"] == "worker").collect();
    assert_eq!(narrowed.len(), 2);
    assert!(
        narrowed
            .iter()
            .all(|q| q["writes"] == serde_json::json!(["sections/ch1"]))
    );
}

#[test]
fn a_delegation_cannot_give_more_than_the_delegator_has() {
    let ws = TestWorkspace::marked(NARROW).agent(
        "narrow",
        r#"set -eu
[ "$BATON_JOIN" = 1 ] && exit 0
mkdir -p "$BATON_OUT/parts"
echo part > "$BATON_OUT/parts/p.md"
# The CLI refuses at once: `narrow` may not write sections itself.
if "$BATON_BIN" delegate --to worker "$BATON_OUT/parts/p.md" --writes sections 2> "$MARKS/refused"; then
    echo "accepted" >> "$MARKS/refused"
fi
# A hand-written brief asking the same is refused by the daemon.
mkdir -p "$BATON_OUT/briefs"
printf '+++\nto = "worker"\nreply_to = "%s"\nwrites = ["sections"]\nrefs = ["parts/p.md"]\n+++\nplease\n' "$BATON_TASK" > "$BATON_OUT/briefs/sneaky.md""#,
    )
    .agent("worker", "true")
    .agent("manager", "true");
    ws.publish("briefs/narrow.md", "# Narrow\n");
    ws.run_once(0);
    let said = ws.mark("refused");
    assert!(
        said.contains("--writes sections: outside what `narrow` may write itself [parts]"),
        "{said}"
    );
    let rejected = ws.records("rejected");
    assert!(
        rejected.iter().any(|r| r["path"] == "briefs/sneaky.md"
            && r["error"].as_str().unwrap().contains(
                "not sent to `worker`: `writes` sections is outside what its delegator `narrow` may write [parts]"
            )),
        "{rejected:?}"
    );
    assert!(
        ws.records("task.queued")
            .iter()
            .all(|q| q["agent"] != "worker")
    );
    // Outside the delegate's own writes is refused too.
    let out = ws.baton(&[
        "delegate",
        "--to",
        "worker",
        "parts/p.md",
        "--writes",
        "parts",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("`writes` parts is outside its own writes [sections]"),
        "{}",
        text(&out)
    );
}

const CHAIN: &str = r#"
[workspace]
stages = ["briefs", "parts"]

[agents.manager]
on = ["briefs/job.md"]
run = ["agents/manager.sh"]
writes = ["parts"]

[agents.worker]
on = []
run = ["agents/worker.sh"]
writes = ["parts"]

[agents.slow]
on = []
run = ["agents/slow.sh"]
writes = ["parts"]
retries = 2
"#;

#[test]
fn a_deadline_is_inherited_capped_and_stops_a_running_grandchild() {
    let ws = TestWorkspace::marked(CHAIN)
        .agent(
            "manager",
            r#"set -eu
[ "$BATON_JOIN" = 1 ] && exit 0
echo "$BATON_DEADLINE" > "$MARKS/manager"
mkdir -p "$BATON_OUT/parts"; echo a > "$BATON_OUT/parts/a.md"
"$BATON_BIN" delegate --to worker "$BATON_OUT/parts/a.md" >/dev/null"#,
        )
        .agent(
            "worker",
            r#"set -eu
[ "$BATON_JOIN" = 1 ] && exit 0
echo "$BATON_DEADLINE" > "$MARKS/worker"
mkdir -p "$BATON_OUT/parts"; echo b > "$BATON_OUT/parts/b.md"
# Asking for more than it has left is capped.
"$BATON_BIN" delegate --to slow "$BATON_OUT/parts/b.md" --deadline 1h >/dev/null"#,
        )
        .agent(
            "slow",
            r#"echo "$BATON_DEADLINE" > "$MARKS/slow"
echo started >> "$MARKS/slow-runs"
sleep 60"#,
        );
    ws.publish(
        "briefs/job.md",
        "+++\ndeadline = \"3s\"\n+++\n# A job with a deadline\n",
    );
    let began = std::time::Instant::now();
    ws.run_once(1); // the grandchild is dead
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "stopped at the deadline, not its 60 s"
    );
    let deadline = ws.mark("manager");
    assert!(!deadline.trim().is_empty());
    assert_eq!(ws.mark("worker"), deadline, "inherited");
    assert_eq!(
        ws.mark("slow"),
        deadline,
        "capped to what the chain has left"
    );
    assert_eq!(ws.mark("slow-runs").lines().count(), 1, "not retried");
    // The grandchild was stopped; the joins of its delegators inherit the deadline and
    // are never started after it.
    let dead = ws.finished("dead");
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert!(
        dead.iter()
            .all(|d| d["error"].as_str().unwrap().starts_with("deadline passed"))
    );
    assert_eq!(
        ws.records("task.started").len(),
        3,
        "manager, worker, slow: no join started"
    );
    let slow_task = ws
        .records("task.queued")
        .into_iter()
        .find(|q| q["agent"] == "slow")
        .unwrap()["task"]
        .clone();
    let stopped = dead.iter().find(|d| d["task"] == slow_task).unwrap();
    assert_eq!(stopped["attempt"], 1);
    assert!(
        stopped["error"]
            .as_str()
            .unwrap()
            .starts_with("deadline passed"),
        "{}",
        dead[0]
    );
    let queued = ws.records("task.queued");
    let slow = queued.iter().find(|q| q["agent"] == "slow").unwrap();
    assert_eq!(slow["deadline"].as_str().unwrap(), deadline.trim());
    assert!(
        slow["deadline_asked"].as_str().is_some(),
        "the cap is journalled: {slow}"
    );
}

#[test]
fn a_task_is_never_started_after_its_deadline() {
    let ws = TestWorkspace::marked(CHAIN)
        .agent("manager", r#"echo ran >> "$MARKS/ran""#)
        .agent("worker", "true")
        .agent("slow", "true");
    ws.publish(
        "briefs/job.md",
        "+++\ndeadline = \"2020-01-01T00:00:00Z\"\n+++\n# Too late\n",
    );
    ws.run_once(1);
    assert!(!ws.marks.join("ran").exists());
    assert!(ws.records("task.started").is_empty());
    let dead = ws.finished("dead");
    assert!(
        dead[0]["error"]
            .as_str()
            .unwrap()
            .contains("deadline passed (2020-01-01T00:00:00.000Z)"),
        "{}",
        dead[0]
    );
    // A bad deadline is a rejection that says what to write.
    ws.publish("briefs/job.md", "+++\ndeadline = \"whenever\"\n+++\n# ?\n");
    ws.run_once(0);
    let rejected = ws.records("rejected");
    assert!(
        rejected.iter().any(|r| r["error"]
            .as_str()
            .unwrap()
            .contains("front matter `deadline`: expected a duration")),
        "{rejected:?}"
    );
}

#[test]
fn default_deadline_applies_to_a_brief_that_names_none() {
    let ws = TestWorkspace::marked(&CHAIN.replace(
        "stages = [\"briefs\", \"parts\"]",
        "stages = [\"briefs\", \"parts\"]\ndefault_deadline = \"1h\"",
    ))
    .agent("manager", r#"echo "$BATON_DEADLINE" > "$MARKS/deadline""#)
    .agent("worker", "true")
    .agent("slow", "true");
    let before = std::time::SystemTime::now();
    ws.publish("briefs/job.md", "# No deadline of its own\n");
    ws.run_once(0);
    let at = humantime::parse_rfc3339(ws.mark("deadline").trim()).unwrap();
    let hour = Duration::from_secs(3600);
    assert!(at >= before + hour - Duration::from_secs(1), "{at:?}");
    assert!(at <= std::time::SystemTime::now() + hour, "{at:?}");
}

const BUDGETED: &str = r#"
[workspace]
stages = ["briefs", "parts"]

[agents.manager]
on = ["briefs/job.md"]
run = ["agents/manager.sh"]
writes = ["parts"]

[agents.worker]
on = []
run = ["agents/worker.sh"]
writes = ["parts"]
"#;

#[test]
fn a_budget_spent_by_two_children_keeps_the_third_from_starting() {
    let ws = TestWorkspace::marked(BUDGETED)
        .agent(
            "manager",
            r#"set -eu
[ "$BATON_JOIN" = 1 ] && exit 0
echo "$BATON_BUDGET" > "$MARKS/manager-budget"
mkdir -p "$BATON_OUT/parts"
for i in 1 2 3; do
    echo "part $i" > "$BATON_OUT/parts/p$i.md"
    # The first asks for more than the chain has: capped.
    if [ $i = 1 ]; then more="--budget 50"; else more=""; fi
    "$BATON_BIN" delegate --to worker "$BATON_OUT/parts/p$i.md" $more >/dev/null
done"#,
        )
        .agent(
            "worker",
            r#"set -eu
echo "$BATON_BUDGET" >> "$MARKS/worker-budgets"
echo ran >> "$MARKS/worker-runs"
printf 'cost = 5\n' > "$BATON_OUT/result.toml""#,
        );
    ws.publish(
        "briefs/job.md",
        "+++\nbudget = 10\n+++\n# A job on a budget\n",
    );
    ws.run_once(1);
    assert_eq!(ws.mark("manager-budget").trim(), "10");
    assert_eq!(
        ws.mark("worker-runs").lines().count(),
        2,
        "the third never starts"
    );
    let dead = ws.finished("dead");
    assert!(!dead.is_empty());
    assert!(
        dead.iter()
            .all(|d| d["error"].as_str().unwrap().starts_with("budget spent")),
        "{dead:?}"
    );
    let queued = ws.records("task.queued");
    let first = queued
        .iter()
        .find(|q| q["agent"] == "worker")
        .expect("a worker was queued");
    assert_eq!(first["budget"], 10.0, "{first}");
    assert_eq!(
        first["budget_asked"], 50.0,
        "the cap is journalled: {first}"
    );
    // trace: each node's cost, and what the chain has left.
    let out = ws.baton(&["trace", "--json", "briefs/job.md"]);
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let root = &doc["trees"][0];
    assert_eq!(root["budget"], 10.0);
    assert_eq!(root["budget_left"], 0.0);
    let costs: Vec<f64> = root["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["agent"] == "worker")
        .map(|c| c["cost"].as_f64().unwrap())
        .collect();
    assert_eq!(costs.iter().sum::<f64>(), 10.0, "{costs:?}");
}

#[test]
fn a_failed_attempts_cost_is_charged_too() {
    let ws = TestWorkspace::marked(
        r#"
[workspace]
default_budget = 100

[agents.caller]
on = ["briefs/*.md"]
run = ["agents/caller.sh"]
writes = ["drafts"]
retries = 1
backoff = "10ms"
"#,
    )
    .agent(
        "caller",
        r#"echo "$BATON_BUDGET" >> "$MARKS/budgets"
if [ "$BATON_ATTEMPT" = 1 ]; then printf 'cost = 3\n' > "$BATON_OUT/result.toml"; exit 1; fi
printf 'cost = 2.5\n' > "$BATON_OUT/result.toml""#,
    );
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    assert_eq!(
        ws.mark("budgets"),
        "100\n97\n",
        "the second attempt sees the first's cost"
    );
    let out = ws.baton(&["trace", "--json", "briefs/job.md"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["trees"][0]["cost"], 5.5);
    assert_eq!(doc["trees"][0]["budget_left"], 94.5);
    let text_out = stdout(&ws.baton(&["trace", "briefs/job.md"]));
    assert!(
        text_out.contains("cost 5.5, budget left 94.5"),
        "{text_out}"
    );
}
