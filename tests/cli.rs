//! Integration tests: the real `baton` binary against temporary workspaces, with
//! shell-script agents. Every wait is a condition with a deadline, never a bare sleep.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BATON: &str = env!("CARGO_BIN_EXE_baton");

/// A temporary workspace with a config and agent scripts.
struct TestWorkspace {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl TestWorkspace {
    fn new(config: &str) -> TestWorkspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("agents")).unwrap();
        fs::write(root.join("baton.toml"), config).unwrap();
        TestWorkspace { _dir: dir, root }
    }

    /// Writes `agents/NAME.sh` (executable); use it as `run = ["agents/NAME.sh"]`.
    fn agent(self, name: &str, body: &str) -> TestWorkspace {
        let path = self.root.join("agents").join(format!("{name}.sh"));
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// Writes outside the stages, then renames into place: how a careful writer
    /// publishes.
    fn publish(&self, rel: &str, content: &str) {
        let tmp = self.path(&format!("incoming-{}", rel.replace('/', "_")));
        fs::write(&tmp, content).unwrap();
        let target = self.path(rel);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::rename(tmp, target).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BATON);
        c.arg("-w")
            .arg(&self.root)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        c
    }

    fn baton(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("running baton")
    }

    /// `baton run --once`, expecting exit code `code`.
    fn run_once(&self, code: i32) -> Output {
        let out = self.baton(&["run", "--once"]);
        assert_eq!(out.status.code(), Some(code), "run --once: {}", text(&out));
        out
    }

    fn daemon(&self) -> Daemon {
        let log = fs::File::create(self.root.join("daemon.log")).unwrap();
        let child = self
            .command(&["run"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting the daemon");
        let log = self.root.join("daemon.log");
        let daemon = Daemon { child };
        let lock = self.path(".baton/daemon.lock");
        let pid = daemon.child.id().to_string();
        wait_for(
            "the daemon to take its lock",
            Duration::from_secs(10),
            || fs::read_to_string(&lock).is_ok_and(|s| s.trim() == pid) && self.journal_exists(),
        );
        // The watcher starts right after the initial recovery; give the first scan a
        // moment by waiting for the "daemon started" log line.
        wait_for(
            "the daemon to start watching",
            Duration::from_secs(10),
            || fs::read_to_string(&log).is_ok_and(|s| s.contains("daemon started")),
        );
        daemon
    }

    fn journal_exists(&self) -> bool {
        self.path(".baton/journal/journal.jsonl").exists()
    }

    fn journal(&self) -> Vec<Value> {
        let text =
            fs::read_to_string(self.path(".baton/journal/journal.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn records(&self, kind: &str) -> Vec<Value> {
        self.journal()
            .into_iter()
            .filter(|r| r["kind"] == kind)
            .collect()
    }

    fn finished(&self, status: &str) -> Vec<Value> {
        self.records("task.finished")
            .into_iter()
            .filter(|r| r["status"] == status)
            .collect()
    }

    fn files_in(&self, stage: &str) -> Vec<String> {
        let mut out: Vec<String> = walk(&self.path(stage))
            .into_iter()
            .map(|p| {
                p.strip_prefix(&self.root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        out.sort();
        out
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A running daemon; stopped with SIGTERM (then SIGKILL) when dropped.
struct Daemon {
    child: Child,
}

impl Daemon {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM and wait for the exit code.
    fn stop(mut self) -> Option<i32> {
        self.signal(libc::SIGTERM);
        wait_exit(&mut self.child, Duration::from_secs(20))
    }

    fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM);
            if wait_exit(&mut self.child, Duration::from_secs(10)).is_none() {
                self.signal(libc::SIGKILL);
                let _ = self.child.wait();
            }
        }
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `cond` until it holds, failing the test with `what` after `limit`.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 2..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            state != "Z"
        }
        Err(_) => false,
    }
}

/// A one-agent config: `copier` copies each brief into drafts/.
const COPIER: &str = r#"
[agents.copier]
on = ["briefs/**/*.md"]
run = ["agents/copier.sh"]
writes = ["drafts"]
concurrency = 2
retries = 0
"#;

const COPY_SCRIPT: &str = r#"set -eu
rel=${BATON_INPUT#briefs/}
mkdir -p "$(dirname "$BATON_OUT/drafts/$rel")"
cp "$BATON_INPUT" "$BATON_OUT/drafts/$rel""#;

fn copier() -> TestWorkspace {
    TestWorkspace::new(COPIER).agent("copier", COPY_SCRIPT)
}

/// `gate` fails until the file `open` exists in the workspace root, then writes
/// drafts/a.md; no retries.
fn gate() -> TestWorkspace {
    TestWorkspace::new(
        r#"
[agents.gate]
on = ["briefs/*.md"]
run = ["agents/gate.sh"]
writes = ["drafts"]
retries = 0
"#,
    )
    .agent(
        "gate",
        r#"test -f "$BATON_WORKSPACE/open" || exit 1; mkdir -p "$BATON_OUT/drafts"; echo ok > "$BATON_OUT/drafts/a.md""#,
    )
}

// ---------------------------------------------------------------------------------
// §4.1 level-triggered

#[test]
fn briefs_that_arrived_while_no_daemon_ran_are_caught_up() {
    let ws = copier();
    ws.write("briefs/a.md", "# A\n");
    ws.write("briefs/deep/b.md", "# B\n");
    ws.write("briefs/.hidden.md", "not an artifact\n");
    ws.write("briefs/notes.md~", "editor backup\n");
    ws.run_once(0);
    assert_eq!(ws.read("drafts/a.md"), "# A\n");
    assert_eq!(ws.read("drafts/deep/b.md"), "# B\n");
    assert_eq!(ws.files_in("drafts"), ["drafts/a.md", "drafts/deep/b.md"]);
    assert_eq!(ws.finished("done").len(), 2);
    // Found by a scan with no record of who wrote them: attributed to `external`.
    let external: Vec<_> = ws
        .records("artifact")
        .into_iter()
        .filter(|r| r["by"] == "external")
        .collect();
    assert_eq!(external.len(), 2);
}

#[test]
fn tasks_are_idempotent_across_restarts() {
    let ws = copier();
    ws.write("briefs/a.md", "# A\n");
    ws.run_once(0);
    let before = ws.journal().len();
    ws.run_once(0);
    {
        let _daemon = ws.daemon();
    }
    ws.run_once(0);
    let queued = ws.records("task.queued");
    assert_eq!(
        queued.len(),
        1,
        "the same brief ran more than once: {queued:?}"
    );
    assert_eq!(
        ws.journal().len(),
        before,
        "a restart journalled something new"
    );
    // New content at the same path is a new task.
    ws.write("briefs/a.md", "# A, revised\n");
    ws.run_once(0);
    assert_eq!(ws.records("task.queued").len(), 2);
    assert_eq!(ws.read("drafts/a.md"), "# A, revised\n");
}

#[test]
fn a_file_in_a_fresh_subfolder_is_seen() {
    let ws = copier();
    let _daemon = ws.daemon();
    let status = Command::new("sh")
        .arg("-c")
        .arg("mkdir -p briefs/new/deeper && printf '# fresh\\n' > briefs/new/deeper/x.md")
        .current_dir(&ws.root)
        .status()
        .unwrap();
    assert!(status.success());
    wait_for("drafts/new/deeper/x.md", Duration::from_secs(10), || {
        ws.path("drafts/new/deeper/x.md").exists()
    });
    assert_eq!(ws.read("drafts/new/deeper/x.md"), "# fresh\n");
}

// ---------------------------------------------------------------------------------
// §4.2 ready means complete

#[test]
fn a_slow_in_place_writer_is_dispatched_once_and_whole() {
    let ws = copier();
    let _daemon = ws.daemon();
    // One open, two writes with a pause between, then close.
    let mut writer = Command::new("sh")
        .arg("-c")
        .arg("{ printf 'part one\\n'; sleep 0.6; printf 'part two\\n'; } > briefs/slow.md")
        .current_dir(&ws.root)
        .spawn()
        .unwrap();
    wait_for(
        "the writer to create the file",
        Duration::from_secs(5),
        || ws.path("briefs/slow.md").exists(),
    );
    assert!(
        ws.records("task.queued").is_empty(),
        "dispatched while the writer still had it open"
    );
    assert!(writer.wait().unwrap().success());
    wait_for("drafts/slow.md", Duration::from_secs(10), || {
        ws.path("drafts/slow.md").exists()
    });
    assert_eq!(ws.read("drafts/slow.md"), "part one\npart two\n");
    // Nothing more arrives later: exactly one task.
    wait_for("the task to finish", Duration::from_secs(5), || {
        ws.finished("done").len() == 1
    });
    assert_eq!(ws.records("task.queued").len(), 1);
}

#[test]
fn a_file_being_written_when_the_daemon_starts_waits_for_its_writer() {
    let ws = copier();
    fs::create_dir_all(ws.path("briefs")).unwrap();
    let mut writer = Command::new("sh")
        .arg("-c")
        .arg("{ printf 'first\\n'; sleep 1.5; printf 'second\\n'; } > briefs/open.md")
        .current_dir(&ws.root)
        .spawn()
        .unwrap();
    wait_for(
        "the writer to create the file",
        Duration::from_secs(5),
        || ws.path("briefs/open.md").exists(),
    );
    let daemon = ws.daemon();
    assert!(writer.wait().unwrap().success());
    wait_for("drafts/open.md", Duration::from_secs(10), || {
        ws.path("drafts/open.md").exists()
    });
    assert_eq!(ws.read("drafts/open.md"), "first\nsecond\n");
    drop(daemon);
    assert_eq!(ws.records("task.queued").len(), 1);
}

// ---------------------------------------------------------------------------------
// §4.4 atomic handoff, crash recovery

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

// ---------------------------------------------------------------------------------
// §4.5 one daemon per workspace

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

// ---------------------------------------------------------------------------------
// §3 agent protocol

#[test]
fn a_hung_agent_and_its_grandchild_are_killed_at_the_timeout() {
    let ws = TestWorkspace::new(
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
echo $! > "$BATON_WORKSPACE/grandchild.pid"
sleep 600"#,
    );
    ws.write("briefs/a.md", "x\n");
    let started = Instant::now();
    ws.run_once(1);
    // SIGTERM is ignored by the grandchild, so the SIGKILL 5 s later must have got it.
    assert!(started.elapsed() < Duration::from_secs(30));
    let pid: i32 = ws.read("grandchild.pid").trim().parse().unwrap();
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
        assert_eq!(log, format!("attempt {attempt} failing\n"));
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
    let json: Value = serde_json::from_slice(&ws.baton(&["status", "--json"]).stdout).unwrap();
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
}

// ---------------------------------------------------------------------------------
// Graceful shutdown, retry

#[test]
fn sigterm_stops_running_agents_and_their_tasks_run_again_at_next_start() {
    let ws = TestWorkspace::new(
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
echo "$$" > "$BATON_WORKSPACE/agent.pid"
while [ ! -f "$BATON_WORKSPACE/release" ]; do sleep 0.05; done
echo "done on attempt $BATON_ATTEMPT" > "$BATON_OUT/drafts/out.md""#,
    );
    ws.write("briefs/a.md", "x\n");
    let daemon = ws.daemon();
    wait_for("the agent to start", Duration::from_secs(10), || {
        ws.path("agent.pid").exists()
    });
    let agent_pid: i32 = ws.read("agent.pid").trim().parse().unwrap();
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

// ---------------------------------------------------------------------------------
// Scale

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
    let status: Value = serde_json::from_slice(&ws.baton(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["done"], n);
}

// ---------------------------------------------------------------------------------
// Config errors (§2): file, line, column, what was expected; exit 2

fn config_error(config: &str) -> String {
    let ws = TestWorkspace::new(config).agent("ok", "true");
    let out = ws.baton(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    stderr(&out).lines().next().unwrap_or_default().to_string()
}

#[test]
fn config_error_unknown_key() {
    assert_eq!(
        config_error("[agents.a]\nrun = [\"agents/ok.sh\"]\nconcurency = 2\n"),
        "baton: baton.toml:3:1: unknown field `concurency`, expected one of `on`, `run`, `writes`, `concurrency`, `timeout`, `retries`, `backoff`, `delegates_to`"
    );
    assert_eq!(
        config_error("[workspace]\nstage = [\"a\"]\n"),
        "baton: baton.toml:2:1: unknown field `stage`, expected one of `stages`, `max_depth`, `settle_ms`, `max_children`"
    );
}

#[test]
fn config_error_bad_duration() {
    assert_eq!(
        config_error("[agents.a]\nrun = [\"agents/ok.sh\"]\nbackoff = \"2 parsecs\"\n"),
        "baton: baton.toml:3:11: agent `a`: bad duration `2 parsecs` for `backoff`: expected a number and a unit, like \"30s\", \"10m\" or \"1h\""
    );
}

#[test]
fn config_error_glob_outside_a_stage() {
    assert_eq!(
        config_error("[agents.a]\non = [\"**/*.md\"]\nrun = [\"agents/ok.sh\"]\n"),
        "baton: baton.toml:2:7: agent `a`: glob `**/*.md` does not start in a stage: expected `STAGE/…` with STAGE one of briefs, drafts, reviews, published"
    );
}

#[test]
fn config_error_writes_names_a_missing_stage() {
    assert_eq!(
        config_error(
            "[workspace]\nstages = [\"in\", \"out\"]\n[agents.a]\nrun = [\"agents/ok.sh\"]\nwrites = [\"outbox\"]\n"
        ),
        "baton: baton.toml:5:11: agent `a`: `writes` names `outbox`, which is not a stage: expected one of in, out"
    );
}

#[test]
fn config_error_missing_program() {
    let ws = TestWorkspace::new("[agents.a]\nrun = [\"agents/missing.sh\"]\n");
    let out = ws.baton(&["run"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "baton: baton.toml:2:7: agent `a`: program `agents/missing.sh` does not exist (looked for {})",
            ws.path("agents/missing.sh").display()
        )),
        "{err}"
    );
    // The caret display points at the value.
    assert!(
        err.contains("2 | run = [\"agents/missing.sh\"]\n  |       ^"),
        "{err}"
    );
}

#[test]
fn config_error_stops_every_command_that_needs_the_config() {
    let ws = TestWorkspace::new("[agents.a]\nrun = [\"agents/ok.sh\"]\ntimeout = 5\n");
    for args in [&["status"][..], &["run", "--once"]] {
        let out = ws.baton(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).starts_with(
                "baton: baton.toml:3:11: invalid type: integer `5`, expected a string"
            ),
            "{}",
            text(&out)
        );
    }
}

// ---------------------------------------------------------------------------------
// CLI

#[test]
fn init_writes_a_working_workspace_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let out = Command::new(BATON).arg("init").arg(&root).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for p in [
        "baton.toml",
        "agents/writer.sh",
        ".gitignore",
        "briefs",
        "drafts",
        "reviews",
        "published",
    ] {
        assert!(root.join(p).exists(), "{p} missing");
    }
    let again = Command::new(BATON).arg("init").arg(&root).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        text(&again)
    );
    // The template's example agent works.
    fs::write(root.join("briefs/hello.md"), "# Hello\n\nSay hi.\n").unwrap();
    let run = Command::new(BATON)
        .args(["-w"])
        .arg(&root)
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let draft = fs::read_to_string(root.join("drafts/hello.md")).unwrap();
    assert!(draft.starts_with("# Draft: Hello\n"), "{draft}");
}

#[test]
fn the_workspace_is_found_upward_from_the_current_folder() {
    let ws = copier();
    fs::create_dir_all(ws.path("briefs/sub")).unwrap();
    let out = Command::new(BATON)
        .arg("status")
        .current_dir(ws.path("briefs/sub"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains(&format!("workspace {}", ws.root.display())));
    let lost = Command::new(BATON)
        .arg("status")
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(lost.status.code(), Some(1));
    assert!(
        stderr(&lost).contains("no baton.toml in / or any folder above it"),
        "{}",
        text(&lost)
    );
}

#[test]
fn drop_refuses_unknown_stages_and_agents() {
    let ws = copier();
    ws.write("x.md", "x\n");
    let x = ws.path("x.md");
    let out = ws.baton(&["drop", x.to_str().unwrap(), "--stage", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "--stage nowhere: no such stage; stages are briefs, drafts, reviews, published"
        )
    );
    let out = ws.baton(&["drop", x.to_str().unwrap(), "--to", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--to nobody: no such agent; agents are copier"));
}

#[test]
fn drop_to_routes_to_one_agent_only() {
    let ws = TestWorkspace::new(
        r#"
[agents.copier]
on = ["briefs/*.md"]
run = ["agents/copier.sh"]
writes = ["drafts"]

[agents.legal]
run = ["agents/legal.sh"]
writes = ["reviews"]
"#,
    )
    .agent("copier", COPY_SCRIPT)
    .agent(
        "legal",
        r#"mkdir -p "$BATON_OUT/reviews"; cp "$BATON_INPUT" "$BATON_OUT/reviews/legal.md""#,
    );
    ws.write("contract.md", "# Contract\n");
    let out = ws.baton(&[
        "drop",
        ws.path("contract.md").to_str().unwrap(),
        "--to",
        "legal",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    ws.run_once(0);
    let agents: Vec<String> = ws
        .records("task.queued")
        .iter()
        .map(|r| r["agent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(agents, ["legal"]);
    assert_eq!(ws.records("task.queued")[0]["reason"], "to");
    assert!(ws.read("reviews/legal.md").contains("to = \"legal\""));
}

#[test]
fn log_shows_the_activity_feed() {
    let ws = copier();
    ws.write("n.md", "# n\n");
    ws.baton(&["drop", ws.path("n.md").to_str().unwrap()]);
    ws.run_once(0);
    let feed = stdout(&ws.baton(&["log"]));
    let lines: Vec<&str> = feed.lines().collect();
    assert!(
        lines[0].ends_with("human        dropped  briefs/n.md"),
        "{feed}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("copier       done  t-") && l.ends_with("→ drafts/n.md")),
        "{feed}"
    );
    let json = stdout(&ws.baton(&["log", "--json"]));
    let records: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), ws.journal().len());
    assert!(
        records
            .iter()
            .all(|r| r["seq"].is_u64() && r["ts"].is_string() && r["kind"].is_string())
    );
}

#[test]
fn demo_runs_the_content_factory_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let out = Command::new(BATON)
        .arg("demo")
        .arg(&root)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed = stdout(&out);
    assert!(printed.contains("activity feed"), "{printed}");
    assert!(
        printed.contains(
            &root
                .join("published/launch.md")
                .canonicalize()
                .unwrap()
                .display()
                .to_string()
        ),
        "{printed}"
    );
    let article = fs::read_to_string(root.join("published/launch.md")).unwrap();
    assert!(
        article.starts_with("# Launching baton 1.0\n")
            && article.contains("## Why handoff by path"),
        "{article}"
    );
    // The thin brief was reviewed but not published.
    assert!(!root.join("published/tiny.md").exists());
    assert!(root.join("reviews/tiny.md").exists());
}

// ---------------------------------------------------------------------------------
// Regressions

/// A log line that cannot be written used to panic a runner (tracing reports write
/// errors with eprintln!), which lost its slot and wedged the daemon for good.
#[test]
fn regression_a_closed_stderr_does_not_wedge_the_daemon() {
    let ws = copier();
    for i in 0..6 {
        ws.write(&format!("briefs/b{i}.md"), "x\n");
    }
    let mut child = ws
        .command(&["run", "--once"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader goes away: every log write fails
    let code = wait_exit(&mut child, Duration::from_secs(30));
    if code.is_none() {
        let _ = child.kill();
    }
    assert_eq!(
        code,
        Some(0),
        "the daemon hung or failed with its stderr closed"
    );
    assert_eq!(ws.files_in("drafts").len(), 6);
}

#[test]
fn an_agent_never_runs_more_tasks_at_once_than_its_concurrency() {
    let ws = TestWorkspace::new(
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
mkdir -p "$BATON_WORKSPACE/running"
touch "$BATON_WORKSPACE/running/$BATON_TASK"
ls "$BATON_WORKSPACE/running" | wc -l >> "$BATON_WORKSPACE/overlap.$BATON_TASK"
sleep 0.15
rm "$BATON_WORKSPACE/running/$BATON_TASK""#,
    );
    for i in 0..8 {
        ws.write(&format!("briefs/b{i}.md"), &format!("{i}\n"));
    }
    ws.run_once(0);
    let seen: Vec<usize> = fs::read_dir(&ws.root)
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

// ---------------------------------------------------------------------------------
// Search (issue 3; the daemon does not feed the index yet, so each search catches up)

fn search(ws: &TestWorkspace, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let mut all = vec!["search", "--json"];
    all.extend_from_slice(args);
    let out = ws.baton(&all);
    let hits = serde_json::from_slice::<Value>(&out.stdout)
        .map(|v| v["hits"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    (out.status.code(), hits)
}

fn paths(hits: &[Value]) -> Vec<String> {
    let mut p: Vec<String> = hits
        .iter()
        .map(|h| h["path"].as_str().unwrap().to_string())
        .collect();
    p.sort();
    p
}

#[test]
fn search_finds_artifacts_with_their_authors_and_filters() {
    let ws = copier();
    ws.write(
        "plan.md",
        "# Quarterly plan\n\nThe launches happen in spring.\n",
    );
    ws.baton(&["drop", ws.path("plan.md").to_str().unwrap()]);
    ws.run_once(0);
    let (code, hits) = search(&ws, &["launch"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        paths(&hits),
        ["briefs/plan.md", "drafts/plan.md"],
        "stemmed: launch matches launches"
    );
    let by: Vec<&str> = hits.iter().map(|h| h["author"].as_str().unwrap()).collect();
    assert!(by.contains(&"human") && by.contains(&"copier"), "{hits:?}");
    assert_eq!(
        paths(&search(&ws, &["launch", "--stage", "drafts"]).1),
        ["drafts/plan.md"]
    );
    assert_eq!(
        paths(&search(&ws, &["launch", "--author", "COPIER"]).1),
        ["drafts/plan.md"]
    );
    assert_eq!(
        paths(&search(&ws, &["author:Human AND spring"]).1),
        ["briefs/plan.md"]
    );
    assert_eq!(hits[0]["title"], "Quarterly plan");
    // Snippets: [markers] off a terminal, spans in JSON.
    let text = stdout(&ws.baton(&["search", "spring", "--stage", "briefs"]));
    assert!(text.contains("[spring]"), "{text}");
    let (_, hits) = search(&ws, &["spring", "--stage", "briefs"]);
    let snippet = hits[0]["snippet"].as_str().unwrap();
    let span = &hits[0]["spans"][0];
    let (s, e) = (
        span["start"].as_u64().unwrap() as usize,
        span["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&snippet[s..e], "spring");
}

#[test]
fn search_follows_replaced_renamed_and_removed_files() {
    let ws = copier();
    ws.write("drafts/note.md", "alpha words\n");
    assert_eq!(paths(&search(&ws, &["alpha"]).1), ["drafts/note.md"]);
    ws.publish("drafts/note.md", "beta words, longer now\n"); // an atomic save
    assert_eq!(
        search(&ws, &["alpha"]).0,
        Some(1),
        "a replaced file still matches its old text"
    );
    assert_eq!(paths(&search(&ws, &["beta"]).1), ["drafts/note.md"]);
    fs::rename(ws.path("drafts/note.md"), ws.path("drafts/renamed.md")).unwrap();
    assert_eq!(paths(&search(&ws, &["beta"]).1), ["drafts/renamed.md"]);
    fs::remove_file(ws.path("drafts/renamed.md")).unwrap();
    assert_eq!(
        search(&ws, &["beta"]).0,
        Some(1),
        "a removed file left a ghost hit"
    );
}

#[test]
fn a_malformed_query_says_where_it_broke() {
    let ws = copier();
    ws.write("drafts/a.md", "launch plan\n");
    let out = ws.baton(&["search", "launch \"plan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the quote at column 8 is never closed"),
        "{}",
        text(&out)
    );
    let lenient = ws.baton(&["search", "--lenient", "launch (plan"]);
    assert_eq!(lenient.status.code(), Some(0), "{}", text(&lenient));
    assert_eq!(ws.baton(&["search", "zebra"]).status.code(), Some(1));
}

#[test]
fn binary_and_huge_files_are_indexed_by_name_only() {
    let ws = copier();
    fs::create_dir_all(ws.path("drafts")).unwrap();
    fs::write(
        ws.path("drafts/diagram.png"),
        b"\x89PNG\r\n\x1a\n\0\0secretword\0",
    )
    .unwrap();
    let mut big = "hugeword ".repeat(2_000_000).into_bytes(); // 18 MB, over the 16 MiB limit
    big.extend(b"\n");
    fs::write(ws.path("drafts/big.md"), big).unwrap();
    ws.write("drafts/ok.md", "a normal secretword note\n");
    assert_eq!(paths(&search(&ws, &["secretword"]).1), ["drafts/ok.md"]);
    assert_eq!(search(&ws, &["hugeword"]).0, Some(1));
    assert_eq!(paths(&search(&ws, &["diagram"]).1), ["drafts/diagram.png"]);
    assert_eq!(paths(&search(&ws, &["big"]).1), ["drafts/big.md"]);
}

#[test]
fn a_schema_version_change_rebuilds_the_index() {
    let ws = copier();
    ws.write("drafts/a.md", "launch plan\n");
    assert_eq!(search(&ws, &["launch"]).0, Some(0));
    fs::write(ws.path(".baton/index/schema-version"), "0\n").unwrap();
    let (code, hits) = search(&ws, &["launch"]);
    assert_eq!(
        (code, paths(&hits)),
        (Some(0), vec!["drafts/a.md".to_string()])
    );
    assert_eq!(ws.read(".baton/index/schema-version").trim(), "2");
}

#[test]
fn the_daemon_makes_commits_searchable_within_a_second() {
    let ws = copier();
    let _daemon = ws.daemon();
    ws.publish("briefs/x.md", "# X\n\nzeppelin manoeuvres\n");
    wait_for("the draft to be committed", Duration::from_secs(10), || {
        ws.finished("done").len() == 1
    });
    let committed = Instant::now();
    wait_for("the draft to be searchable", Duration::from_secs(1), || {
        paths(&search(&ws, &["zeppelin", "--stage", "drafts"]).1) == ["drafts/x.md"]
    });
    assert!(committed.elapsed() < Duration::from_secs(1));
    let (_, hits) = search(&ws, &["zeppelin", "--stage", "drafts"]);
    assert_eq!(hits[0]["author"], "copier");
    // Removals and renames leave no ghost hits.
    fs::rename(ws.path("drafts/x.md"), ws.path("drafts/moved.md")).unwrap();
    wait_for("the rename to be indexed", Duration::from_secs(1), || {
        paths(&search(&ws, &["zeppelin", "--stage", "drafts"]).1) == ["drafts/moved.md"]
    });
    fs::remove_file(ws.path("drafts/moved.md")).unwrap();
    wait_for("the removal to be indexed", Duration::from_secs(1), || {
        search(&ws, &["zeppelin", "--stage", "drafts"]).0 == Some(1)
    });
    // A folder moved away takes its files' hits with it.
    ws.write("drafts/sub/deep.md", "xylophone\n");
    wait_for("the new file to be indexed", Duration::from_secs(2), || {
        search(&ws, &["xylophone"]).0 == Some(0)
    });
    fs::rename(ws.path("drafts/sub"), ws.path("not-a-stage")).unwrap();
    wait_for("the folder's hits to go", Duration::from_secs(1), || {
        search(&ws, &["xylophone"]).0 == Some(1)
    });
}

#[test]
fn search_is_right_after_the_daemon_is_killed() {
    let ws = copier();
    let daemon = ws.daemon();
    ws.publish("briefs/a.md", "alpha\n");
    ws.publish("briefs/b.md", "bravo\n");
    wait_for("both drafts", Duration::from_secs(10), || {
        ws.finished("done").len() == 2
    });
    wait_for("both indexed", Duration::from_secs(2), || {
        search(&ws, &["alpha OR bravo", "--stage", "drafts"])
            .1
            .len()
            == 2
    });
    daemon.kill9();
    // Changes while no daemon runs: the next search catches up on its own.
    fs::remove_file(ws.path("drafts/a.md")).unwrap();
    ws.write("drafts/b.md", "charlie\n");
    assert_eq!(
        search(&ws, &["alpha"])
            .1
            .iter()
            .filter(|h| h["stage"] == "drafts")
            .count(),
        0
    );
    assert_eq!(search(&ws, &["bravo", "--stage", "drafts"]).0, Some(1));
    assert_eq!(paths(&search(&ws, &["charlie"]).1), ["drafts/b.md"]);
}

#[test]
fn the_search_size_limit_is_configurable() {
    let ws = TestWorkspace::new(&format!("{COPIER}\n[search]\nmax_file_size = \"1KiB\"\n"))
        .agent("copier", COPY_SCRIPT);
    ws.write("drafts/long.md", &"overflowing ".repeat(200));
    ws.write("drafts/short.md", "overflowing\n");
    assert_eq!(paths(&search(&ws, &["overflowing"]).1), ["drafts/short.md"]);
    assert_eq!(paths(&search(&ws, &["long"]).1), ["drafts/long.md"]);
}

#[test]
fn a_new_subfolder_and_an_in_place_edit_are_caught_up() {
    let ws = copier();
    ws.write("drafts/a.md", "first\n");
    assert_eq!(search(&ws, &["first"]).0, Some(0)); // the full catch-up, then the folder map
    // A new subfolder, found through its parent's mtime by the cheap catch-up.
    ws.write("drafts/new/deeper/b.md", "second\n");
    assert_eq!(
        paths(&search(&ws, &["second"]).1),
        ["drafts/new/deeper/b.md"]
    );
    // Removing the subfolder removes its hits.
    fs::remove_dir_all(ws.path("drafts/new")).unwrap();
    assert_eq!(search(&ws, &["second"]).0, Some(1));
    // An edit in place keeps the folder's mtime: `baton index` checks every file.
    ws.write("drafts/a.md", "third, edited in place\n");
    let out = ws.baton(&["index"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(paths(&search(&ws, &["third"]).1), ["drafts/a.md"]);
    assert_eq!(search(&ws, &["first"]).0, Some(1));
}

#[test]
fn baton_index_catches_an_edit_that_keeps_size_and_mtime() {
    let ws = copier();
    ws.write("drafts/a.md", "apple\n");
    assert_eq!(ws.baton(&["index"]).status.code(), Some(0));
    let mtime = fs::metadata(ws.path("drafts/a.md"))
        .unwrap()
        .modified()
        .unwrap();
    fs::write(ws.path("drafts/a.md"), "mango\n").unwrap(); // same size
    fs::File::options()
        .write(true)
        .open(ws.path("drafts/a.md"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let out = ws.baton(&["index"]);
    assert!(stdout(&out).contains("1 updated"), "{}", text(&out));
    assert_eq!(paths(&search(&ws, &["mango"]).1), ["drafts/a.md"]);
    assert_eq!(search(&ws, &["apple"]).0, Some(1));
}
