//! Issue 13, defects 5 and 6: each attempt runs in a Landlock sandbox (writes only to
//! its staging tree, its private temp folder and `sandbox_writes`; no signals out), so
//! only the daemon attributes; and every process an attempt started is gone when it
//! ends, however it left the agent's process group.

use std::fs;
use std::time::Duration;

use super::harness::*;

/// Runs `try CMD` lines in an agent and writes `allowed CMD` or `denied CMD` for each
/// into `$MARKS/<task>.tried`.
const TRY: &str = r#"try() {
    if sh -c "$1" >/dev/null 2>&1; then r=allowed; else r=denied; fi
    echo "$r $1" >> "$MARKS/$BATON_TASK.tried"
}
"#;

fn tried(ws: &TestWorkspace) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in fs::read_dir(&ws.marks).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".tried") {
            lines.extend(ws.mark(&name).lines().map(String::from));
        }
    }
    lines
}

#[test]
fn a_sandboxed_agent_cannot_touch_the_workspace_journal_config_or_another_task() {
    let ws = TestWorkspace::marked(
        r#"
[workspace]
stages = ["briefs", "drafts", "published"]

[agents.writer]
on = ["briefs/*.md"]
run = ["agents/writer.sh"]
writes = ["drafts"]
concurrency = 2
"#,
    )
    .agent(
        "writer",
        &format!(
            r#"{TRY}
# Both tasks run at once: each waits for the other's staging tree to exist.
touch "$MARKS/$BATON_TASK.up"
i=0; while [ "$(ls "$MARKS" | grep -c '\.up$')" -lt 2 ]; do i=$((i+1)); [ $i -lt 400 ] || exit 1; sleep 0.05; done
for other in "$BATON_WORKSPACE"/.baton/runs/*/1/out; do
    [ "$other" = "$BATON_OUT" ] || try "mkdir -p '$other/drafts' && echo forged > '$other/drafts/forged.md'"
done
try "echo x > published/direct.md"
try "echo '[agents.evil]' >> baton.toml"
try "echo '{{\"kind\":\"artifact\",\"by\":\"human\"}}' >> .baton/journal/journal.jsonl"
try "rm drafts/person.md"
try "echo x > drafts/person.md"
try "echo x > /tmp/baton-sandbox-escape-$BATON_TASK"
try "kill -0 $PPID"
try "echo hi | env -u BATON_TASK baton write drafts/as-human.md"
try "echo hi | BATON_AGENT=other baton write drafts/as-other.md"
try "echo t > \"\$TMPDIR/t\""
mkdir -p "$BATON_OUT/drafts"
echo mine | baton write "drafts/$(basename "$BATON_INPUT")"
"#
        ),
    );
    ws.publish("drafts/person.md", "a person's\n");
    let config = ws.read("baton.toml");
    ws.publish("briefs/a.md", "a\n");
    ws.publish("briefs/b.md", "b\n");
    ws.run_once(0);

    let tried = tried(&ws);
    let allowed: Vec<&String> = tried.iter().filter(|l| l.starts_with("allowed")).collect();
    assert_eq!(tried.len(), 2 * 11, "{tried:#?}");
    assert_eq!(
        allowed.len(),
        2,
        "only each agent's own TMPDIR: {allowed:#?}"
    );
    assert!(allowed.iter().all(|l| l.contains("TMPDIR")), "{allowed:#?}");

    assert_eq!(ws.read("drafts/person.md"), "a person's\n");
    assert_eq!(ws.read("baton.toml"), config);
    assert!(!ws.path("published/direct.md").exists());
    assert!(!ws.path("drafts/as-human.md").exists());
    assert!(!ws.path("drafts/as-other.md").exists());
    assert!(!ws.path("drafts/forged.md").exists());
    assert!(fs::read_dir("/tmp").unwrap().flatten().all(|e| {
        !e.file_name()
            .to_string_lossy()
            .starts_with("baton-sandbox-escape")
    }));
    // What was written went through the commit, attributed by the daemon.
    for record in ws.records("artifact") {
        let path = record["path"].as_str().unwrap();
        match path {
            "drafts/person.md" | "briefs/a.md" | "briefs/b.md" => {}
            "drafts/a.md" | "drafts/b.md" => assert_eq!(record["by"], "writer", "{record}"),
            other => panic!("an artifact nobody should have made: {other}: {record}"),
        }
    }
    assert_eq!(ws.read("drafts/a.md"), "mine\n");
    for started in ws.records("task.started") {
        assert_eq!(started["sandbox"], "landlock", "{started}");
    }
}

#[test]
fn a_denied_write_fails_with_eacces_and_the_failure_says_why() {
    let ws = TestWorkspace::new(
        "[agents.w]\non = [\"briefs/*.md\"]\nrun = [\"agents/w.sh\"]\nwrites = [\"drafts\"]\nretries = 0\n",
    )
    .agent("w", "set -e\necho x > drafts/direct.md");
    ws.publish("briefs/a.md", "a\n");
    ws.run_once(1);
    let dead = ws.finished("dead");
    let error = dead[0]["error"].as_str().unwrap();
    assert!(
        error.contains("Permission denied") && error.contains("runs in baton's sandbox"),
        "{error}"
    );
    let task = dead[0]["task"].as_str().unwrap();
    let logs = stdout(&ws.baton(&["logs", task]));
    assert!(
        logs.contains("\nbaton: sandbox landlock: writes only to"),
        "{logs}"
    );
    assert!(logs.contains("Permission denied"), "{logs}");
    assert!(!ws.path("drafts/direct.md").exists());
}

#[test]
fn sandbox_writes_grants_a_folder_outside_and_sandbox_false_runs_unconfined() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join(".claude");
    let ws = TestWorkspace::new(&format!(
        r#"
[agents.llm]
on = ["briefs/*.md"]
run = ["agents/llm.sh"]
sandbox_writes = ["{}"]

[agents.free]
on = ["briefs/*.md"]
run = ["agents/free.sh"]
sandbox = false
"#,
        state.display()
    ))
    .agent("llm", &format!("echo state > {}/session", state.display()))
    .agent("free", "echo unconfined > \"$BATON_WORKSPACE/free.txt\"");
    ws.publish("briefs/a.md", "a\n");
    let out = ws.run_once(0);
    assert!(
        text(&out).contains("for its sandbox_writes"),
        "{}",
        text(&out)
    );
    assert_eq!(
        fs::read_to_string(state.join("session")).unwrap(),
        "state\n"
    );
    assert_eq!(ws.read("free.txt"), "unconfined\n");
    let modes: Vec<String> = ws
        .records("task.started")
        .iter()
        .map(|r| r["sandbox"].as_str().unwrap().to_string())
        .collect();
    assert!(modes.contains(&"off".into()) && modes.contains(&"landlock".into()));
}

#[test]
fn sandbox_true_without_landlock_refuses_to_start_and_the_default_says_it_runs_unconfined() {
    let config = |sandbox: &str| {
        format!("[agents.w]\non = [\"briefs/*.md\"]\nrun = [\"agents/w.sh\"]\n{sandbox}\n")
    };
    let ws = TestWorkspace::new(&config("sandbox = true")).agent("w", "true");
    let out = ws
        .command(&["run", "--once"])
        .env("BATON_TEST_LANDLOCK_ABI", "0")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("agent `w` has `sandbox = true`, but this kernel offers no Landlock"),
        "{}",
        text(&out)
    );

    fs::write(ws.path("baton.toml"), config("")).unwrap();
    ws.publish("briefs/a.md", "a\n");
    let out = ws
        .command(&["run", "--once"])
        .env("BATON_TEST_LANDLOCK_ABI", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        text(&out).matches("agents run unconfined").count(),
        1,
        "said once: {}",
        text(&out)
    );
    assert_eq!(ws.records("task.started")[0]["sandbox"], "off");
}

/// An agent that starts `sleep`s that leave its process group four ways, notes their
/// pids in `$MARKS`, then runs `rest`.
fn escaper(rest: &str) -> TestWorkspace {
    TestWorkspace::marked(
        "[agents.e]\non = [\"briefs/*.md\"]\nrun = [\"agents/e.sh\"]\ntimeout = \"3s\"\nretries = 0\n",
    )
    .agent(
        "e",
        &format!(
            r#"setsid sh -c 'echo $$ > "$MARKS/setsid.pid"; exec sleep 300' &
( sh -c 'echo $$ > "$MARKS/double.pid"; exec sleep 301' & ) &
setsid env -i sh -c "echo \$\$ > '$MARKS/cleared.pid'; exec sleep 302" &
perl -e 'setpgrp(0, 0); open(my $f, ">", "$ENV{{MARKS}}/setpgid.pid"); print $f $$; close $f; exec "sleep", "303"' &
i=0; while [ "$(ls "$MARKS" | grep -c '\.pid$')" -lt 4 ]; do i=$((i+1)); [ $i -lt 400 ] || exit 1; sleep 0.02; done
{rest}"#
        ),
    )
}

fn escaped_pids(ws: &TestWorkspace) -> Vec<i32> {
    ["setsid", "double", "cleared", "setpgid"]
        .iter()
        .map(|name| {
            let text = ws.mark(&format!("{name}.pid"));
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}.pid: {text:?}"))
        })
        .collect()
}

#[test]
fn processes_that_left_the_agents_group_are_gone_when_it_exits() {
    let ws = escaper("exit 0");
    ws.publish("briefs/a.md", "a\n");
    ws.run_once(0);
    let pids = escaped_pids(&ws);
    wait_gone(&pids);
}

#[test]
fn processes_that_left_the_agents_group_are_gone_at_its_timeout() {
    let ws = escaper("exec sleep 600");
    ws.publish("briefs/a.md", "a\n");
    ws.run_once(1);
    assert!(
        ws.finished("dead")[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("timed out")
    );
    let pids = escaped_pids(&ws);
    wait_gone(&pids);
}

#[test]
fn processes_that_left_the_agents_group_are_gone_at_the_daemons_shutdown() {
    let ws = escaper("exec sleep 600");
    let daemon = ws.daemon();
    ws.publish("briefs/a.md", "a\n");
    wait_for(
        "the agent to start its processes",
        Duration::from_secs(10),
        || escaped_pids_ready(&ws),
    );
    let status = stdout(&ws.baton(&["status"]));
    assert!(status.contains("sandbox landlock"), "{status}");
    let pids = escaped_pids(&ws);
    assert!(pids.iter().all(|&p| process_alive(p)), "running meanwhile");
    assert_eq!(daemon.stop(), Some(0));
    wait_gone(&pids);
}

#[test]
fn processes_that_left_the_agents_group_are_gone_once_a_crashed_daemon_restarts() {
    let ws = escaper("exec sleep 600");
    let daemon = ws.daemon();
    ws.publish("briefs/a.md", "a\n");
    wait_for(
        "the agent to start its processes",
        Duration::from_secs(10),
        || escaped_pids_ready(&ws),
    );
    daemon.kill9();
    let pids = escaped_pids(&ws);
    // The one that cleared its environment cannot be told from anyone else's once its
    // subreaper is gone: it is the test's to end.
    let cleared = pids[2];
    let _end = EndProcess(cleared);
    let found: Vec<i32> = [pids[0], pids[1], pids[3]].into();
    assert!(
        found.iter().all(|&p| process_alive(p)),
        "they outlived the daemon"
    );
    let daemon = ws.daemon();
    wait_for(
        "the dead daemon's escaped processes to be gone",
        Duration::from_secs(10),
        || found.iter().all(|&p| !process_alive(p)),
    );
    daemon.stop();
}

/// Kills a process when the test ends, however it ends.
struct EndProcess(i32);

impl Drop for EndProcess {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &self.0.to_string()])
            .status();
    }
}

fn wait_gone(pids: &[i32]) {
    wait_for(
        "every escaped process to be gone",
        Duration::from_secs(5),
        || pids.iter().all(|&p| !process_alive(p)),
    );
}

/// Every pid file holds a whole pid (the shell makes the file before it writes).
fn escaped_pids_ready(ws: &TestWorkspace) -> bool {
    ["setsid", "double", "cleared", "setpgid"].iter().all(|n| {
        fs::read_to_string(ws.marks.join(format!("{n}.pid")))
            .is_ok_and(|t| t.trim().parse::<i32>().is_ok())
    })
}

#[test]
fn drop_inside_a_task_is_staged_and_committed_as_the_agents() {
    let ws = TestWorkspace::new(
        "[workspace]\nstages = [\"briefs\", \"drafts\"]\n\n[agents.w]\non = [\"briefs/*.md\"]\nrun = [\"agents/w.sh\"]\nwrites = [\"drafts\"]\n",
    )
    .agent(
        "w",
        r#"set -eu
echo made > "$TMPDIR/note.md"
baton drop --stage drafts "$TMPDIR/note.md"
! baton drop --stage drafts --wait "$TMPDIR/note.md" 2> "$TMPDIR/err"
grep -q "would wait for this very task" "$TMPDIR/err""#,
    );
    ws.publish("briefs/a.md", "a\n");
    ws.run_once(0);
    assert_eq!(ws.read("drafts/note.md"), "made\n");
    let note = ws
        .records("artifact")
        .into_iter()
        .find(|r| r["path"] == "drafts/note.md")
        .unwrap();
    assert_eq!(note["by"], "w", "{note}");
    assert!(note["task"].is_string(), "{note}");
}

/// Regression: inside the sandbox, `baton search` failed (tantivy could not take the
/// index's meta lock) and `baton status` failed whenever the daemon had not yet written
/// its latest entries to the state store (a read-only store could not catch up).
#[test]
fn search_and_status_work_inside_the_sandbox() {
    let ws = TestWorkspace::marked(
        r#"
[workspace]
stages = ["briefs", "drafts"]

[agents.writer]
on = ["briefs/*.md"]
run = ["agents/writer.sh"]
writes = ["drafts"]
retries = 0
"#,
    )
    .agent(
        "writer",
        r#"set -eu
"$BATON_BIN" search otters > "$MARKS/search" 2> "$MARKS/search.err"
"$BATON_BIN" status --json > "$MARKS/status" 2> "$MARKS/status.err""#,
    );
    ws.publish("drafts/otters.md", "Otters hold hands.\n");
    ws.baton(&["index"]);
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    assert!(
        ws.mark("search").contains("drafts/otters.md"),
        "{}",
        ws.mark("search.err")
    );
    let status: serde_json::Value = serde_json::from_str(&ws.mark("status"))
        .unwrap_or_else(|e| panic!("{e}: {}", ws.mark("status.err")));
    assert_eq!(status["running"][0]["agent"], "writer", "{status}");
}

/// An agent starts with stdin, stdout and stderr open and nothing else of the
/// daemon's (its journal, its store, the sandbox's ruleset, the pipes of other agents),
/// confined or not: `ls` lists those three and the folder it reads itself.
#[test]
fn an_agent_inherits_no_descriptor_but_its_stdio() {
    for sandbox in ["true", "false"] {
        let ws = TestWorkspace::new(&format!(
            "[agents.fds]\non = [\"briefs/*.md\"]\nrun = [\"ls\", \"/proc/self/fd\"]\n\
             sandbox = {sandbox}\nconcurrency = 2\n"
        ));
        for i in 0..4 {
            ws.write(&format!("briefs/b{i}.md"), "x\n");
        }
        ws.run_once(0);
        let tasks = ws.records("task.queued");
        assert_eq!(tasks.len(), 4);
        for task in tasks {
            let task = task["task"].as_str().unwrap();
            let log =
                fs::read_to_string(ws.path(&format!(".baton/runs/{task}/1/stdout.log"))).unwrap();
            let fds: Vec<&str> = log.lines().collect();
            assert_eq!(fds, ["0", "1", "2", "3"], "sandbox = {sandbox}, {task}");
        }
    }
}
