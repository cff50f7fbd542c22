//! Integration tests: the real `baton` binary against temporary workspaces, with
//! shell-script agents. Every wait is a condition with a deadline, never a bare sleep.

use std::fs;
use std::io::Write as _;
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

    /// `baton run --once`, expecting exit code `code`. A daemon that never drains is
    /// stopped after two minutes and fails the test, rather than hanging it.
    fn run_once(&self, code: i32) -> Output {
        use std::io::{Read, Seek};
        let mut stdout = tempfile::tempfile().unwrap();
        let mut stderr = tempfile::tempfile().unwrap();
        let mut child = self
            .command(&["run", "--once"])
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().unwrap())
            .stderr(stderr.try_clone().unwrap())
            .spawn()
            .expect("running baton");
        let exited = wait_exit(&mut child, Duration::from_secs(120));
        if exited.is_none() {
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        let read = |f: &mut fs::File| {
            let mut bytes = Vec::new();
            f.rewind().unwrap();
            f.read_to_end(&mut bytes).unwrap();
            bytes
        };
        let out = Output {
            status,
            stdout: read(&mut stdout),
            stderr: read(&mut stderr),
        };
        assert!(
            exited.is_some(),
            "run --once did not finish in 2 minutes: {}",
            text(&out)
        );
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

    /// `baton status --json`, parsed.
    fn status_json(&self) -> Value {
        let out = self.baton(&["status", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
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

/// Asserts a command failed with `code` and said `says` on stderr.
fn fails_with(out: &Output, code: i32, says: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    assert!(stderr(out).contains(says), "{}", text(out));
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
    // Parsed, not just present: the shell creates the file before it writes the pid.
    let read_pid = || -> Option<i32> {
        fs::read_to_string(ws.path("agent.pid"))
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
    let status = ws.status_json();
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
    fails_with(
        &ws.baton(&["search", "launch \"plan"]),
        2,
        "the quote at column 8 is never closed",
    );
    let lenient = ws.baton(&["search", "--lenient", "launch (plan"]);
    assert_eq!(lenient.status.code(), Some(0), "{}", text(&lenient));
    assert_eq!(ws.baton(&["search", "zebra"]).status.code(), Some(1));
    // An empty query is a mistake, not "nothing matched"; `*` asks for everything.
    fails_with(
        &ws.baton(&["search", " ", "--stage", "drafts"]),
        2,
        "the query is empty",
    );
    assert_eq!(
        paths(&search(&ws, &["*", "--stage", "drafts"]).1),
        ["drafts/a.md"]
    );
    assert_eq!(
        ws.baton(&["search", "launch", "--limit", "0"])
            .status
            .code(),
        Some(2)
    );
    fails_with(
        &ws.baton(&["search", "launch", "--stage", "draft"]),
        2,
        "--stage draft: no such stage; stages are briefs, drafts",
    );
    assert_eq!(search(&ws, &["launch", "--stage", "Drafts"]).0, Some(0));
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
    assert_eq!(
        ws.read(".baton/index/schema-version").trim(),
        baton::index::schema::SCHEMA_VERSION.to_string()
    );
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

/// A running daemon that has copied two briefs into drafts/a.md ("alpha") and
/// drafts/b.md ("bravo") and indexed them.
fn two_drafts_indexed() -> (TestWorkspace, Daemon) {
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
    (ws, daemon)
}

#[test]
fn search_is_right_after_the_daemon_is_killed() {
    let (ws, daemon) = two_drafts_indexed();
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
fn a_restarted_daemon_indexes_what_changed_while_it_was_down() {
    let (ws, daemon) = two_drafts_indexed();
    assert_eq!(daemon.stop(), Some(0));
    // While no daemon runs: a draft removed, one replaced, one added from outside.
    fs::remove_file(ws.path("drafts/a.md")).unwrap();
    ws.publish("drafts/b.md", "charlie\n");
    ws.publish("drafts/c.md", "delta\n");
    let _daemon = ws.daemon();
    // Once the daemon's writer has caught up, a search only reads: what it finds, the
    // daemon's own catch-up indexed (the start's walk of the stages tells it nothing).
    wait_for(
        "the daemon's index catch-up",
        Duration::from_secs(10),
        || {
            fs::read_to_string(ws.path("daemon.log"))
                .is_ok_and(|s| s.contains("search index up to date"))
        },
    );
    let (code, hits) = search(&ws, &["delta"]);
    assert_eq!(
        (code, paths(&hits)),
        (Some(0), vec!["drafts/c.md".to_string()])
    );
    assert_eq!(hits[0]["author"], "external");
    assert_eq!(paths(&search(&ws, &["charlie"]).1), ["drafts/b.md"]);
    assert_eq!(search(&ws, &["bravo", "--stage", "drafts"]).0, Some(1));
    assert_eq!(search(&ws, &["alpha", "--stage", "drafts"]).0, Some(1));
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

// ---------------------------------------------------------------------------------
// §7 Delegation

/// A copy of `examples/NAME` in a temporary folder.
fn example(name: &str) -> TestWorkspace {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().canonicalize().unwrap();
    for file in walk(&src) {
        let target = root.join(file.strip_prefix(&src).unwrap());
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(&file, &target).unwrap();
    }
    TestWorkspace { _dir: dir, root }
}

/// Drops every file of `folder` (a folder of the workspace) with `baton drop`.
fn drop_all(ws: &TestWorkspace, folder: &str) {
    let mut files = walk(&ws.path(folder));
    files.sort();
    for f in files {
        let out = ws.baton(&["drop", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
}

fn queued_with_reason(ws: &TestWorkspace, reason: &str) -> Vec<Value> {
    ws.records("task.queued")
        .into_iter()
        .filter(|r| r["reason"] == reason)
        .collect()
}

fn rejections(ws: &TestWorkspace) -> Vec<String> {
    ws.records("rejected")
        .iter()
        .map(|r| {
            format!(
                "{}: {}",
                r["path"].as_str().unwrap(),
                r["error"].as_str().unwrap()
            )
        })
        .collect()
}

/// A manager that delegates `parts` parts to `worker` (each `parts/pN.md`) and, in its
/// join run, keeps task.json as `join-N.json` in the workspace root.
fn manager_config(workers: &str, extra: &str) -> String {
    format!(
        r#"
[workspace]
stages = ["briefs", "parts", "sections"]
{extra}

[agents.manager]
on = ["briefs/*.md"]
run = ["agents/manager.sh"]
writes = ["parts"]
retries = 0

[agents.worker]
on = []
run = ["agents/worker.sh"]
writes = ["sections"]
retries = 0
{workers}
"#
    )
}

fn manager_script(parts: u32, to: &str) -> String {
    format!(
        r#"set -eu
if [ "$BATON_JOIN" = 1 ]; then
    n=$(ls "$BATON_WORKSPACE" | grep -c '^join-' || true)
    # Copied, then renamed: the test reads these files while joins may still run.
    cp "$BATON_TASK_FILE" "$BATON_WORKSPACE/.join.$BATON_TASK"
    mv "$BATON_WORKSPACE/.join.$BATON_TASK" "$BATON_WORKSPACE/join-$((n + 1)).json"
    exit 0
fi
mkdir -p "$BATON_OUT/parts"
for i in $(seq 1 {parts}); do
    echo "part $i" > "$BATON_OUT/parts/p$i.md"
    baton delegate --to {to} "parts/p$i.md" --note "Do part $i."
done"#
    )
}

/// Writes sections/<part>.md from the part its brief points at.
const WORKER_SCRIPT: &str = r#"set -eu
part=$(sed -n 's/^refs = \["\([^"]*\)".*/\1/p' "$BATON_INPUT")
mkdir -p "$BATON_OUT/sections"
cp "$part" "$BATON_OUT/sections/$(basename "$part")"
printf 'summary = "did %s"\n' "$part" > "$BATON_OUT/result.toml""#;

fn join_files(ws: &TestWorkspace) -> Vec<Value> {
    let mut names: Vec<String> = fs::read_dir(&ws.root)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("join-"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| serde_json::from_str(&ws.read(n)).unwrap())
        .collect()
}

#[test]
fn example_router_sends_each_request_to_its_specialist() {
    let ws = example("router");
    drop_all(&ws, "sample-requests");
    ws.run_once(0);
    for (request, specialist) in [
        ("refund.md", "finance"),
        ("contract.md", "legal"),
        ("login.md", "support"),
    ] {
        let answer = ws.read(&format!("answers/{request}"));
        assert!(
            answer.contains(&format!("answered_by = \"{specialist}\"")),
            "{request}: {answer}"
        );
    }
    // Each specialist ran once, routed by `to`; no other agent saw the routing notes.
    let routed: Vec<String> = queued_with_reason(&ws, "to")
        .iter()
        .map(|r| r["agent"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = routed.clone();
    sorted.sort();
    assert_eq!(sorted, ["finance", "legal", "support"]);
    assert_eq!(ws.records("task.queued").len(), 6);
}

#[test]
fn example_manager_worker_assembles_the_parts_in_one_join() {
    let ws = example("manager-worker");
    drop_all(&ws, "sample-briefs");
    ws.run_once(0);
    let report = ws.read("reports/launch.md");
    for topic in [
        "Audience and positioning",
        "Pricing and packaging",
        "Rollout timeline",
    ] {
        assert!(report.contains(&format!("## {topic}")), "{report}");
    }
    assert_eq!(queued_with_reason(&ws, "delegate").len(), 3);
    let joins = queued_with_reason(&ws, "join");
    assert_eq!(joins.len(), 1);
    assert_eq!(joins[0]["agent"], "manager");
    // The briefs point at the parts; no content was copied into them.
    for brief in ws
        .files_in("briefs")
        .iter()
        .filter(|b| b.contains(".worker."))
    {
        let text = ws.read(brief);
        assert!(text.contains("refs = [\"parts/launch-"), "{text}");
        assert!(!text.contains("Pricing"), "{text}");
    }
}

#[test]
fn example_review_loop_revises_until_approved_or_max_depth() {
    let ws = example("review-loop");
    drop_all(&ws, "sample-briefs");
    ws.run_once(0);
    // The essay is approved at the third revision.
    assert!(ws.read("drafts/essay.md").contains("revision = 3"));
    assert!(
        ws.read("reviews/essay.md")
            .contains("verdict = \"approve\"")
    );
    let summaries: Vec<String> = ws
        .finished("done")
        .iter()
        .filter_map(|r| r["result"]["summary"].as_str().map(str::to_string))
        .collect();
    assert!(
        summaries.iter().any(|s| s == "approved at revision 3"),
        "{summaries:?}"
    );
    // The perfectionist's loop is ended by max_depth, and the writer is told so.
    let refused = rejections(&ws);
    assert!(
        refused
            .iter()
            .any(|r| r.starts_with("briefs/perfectionist.editor.")
                && r.contains("over max_depth = 6")),
        "{refused:?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s == "stopped: the review was refused (max_depth)"),
        "{summaries:?}"
    );
    // Every join ran once: one per delegating task.
    let delegating = ws
        .finished("done")
        .iter()
        .filter(|r| r["delegated"].as_array().is_some_and(|d| !d.is_empty()))
        .count();
    assert_eq!(queued_with_reason(&ws, "join").len(), delegating);
}

#[test]
fn example_content_factory_holds_published_until_approved_or_rejected() {
    let ws = example("content-factory");
    drop_all(&ws, "sample-briefs");
    ws.run_once(0);
    assert!(
        ws.files_in("published").is_empty(),
        "nothing published before approval"
    );
    let status = ws.status_json();
    let held = status["held"].as_array().unwrap().clone();
    assert_eq!(held.len(), 2, "{status}");
    let held_for = |path: &str| {
        held.iter()
            .find(|t| t["outputs"][0]["path"] == path)
            .unwrap_or_else(|| panic!("no held task for {path}: {held:?}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let launch = held_for("published/launch.md");
    let pricing = held_for("published/pricing.md");
    let shown = stdout(&ws.baton(&["status"]));
    assert!(
        shown.contains("held for approval (2)") && shown.contains("published/launch.md"),
        "{shown}"
    );

    let out = ws.baton(&["approve", &launch[..8]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        ws.read("published/launch.md")
            .starts_with("# Launching baton 1.0")
    );
    let out = ws.baton(&["reject", &pricing, "--note", "not this quarter"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!ws.path("published/pricing.md").exists());
    // The rejected outputs stay in the staging tree for inspection.
    assert!(
        walk(&ws.path(&format!(".baton/runs/{pricing}")))
            .iter()
            .any(|p| p.ends_with("out/published/pricing.md"))
    );

    let approvals = ws.records("approval");
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals[1]["note"], "not this quarter");
    let who = stdout(&ws.baton(&["who", "published/launch.md"]));
    assert!(who.contains("publisher"), "{who}");
    let status = ws.status_json();
    assert_eq!(status["held"].as_array().unwrap().len(), 0);
    let dead = &status["dead"][0];
    assert_eq!(dead["id"], pricing.as_str());
    assert!(dead["error"].as_str().unwrap().contains("not this quarter"));
    // Neither decision can be taken twice.
    let again = ws.baton(&["approve", &launch]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(stderr(&again).contains("not held for approval"));
    // An approval commit is an ordinary commit: a daemon started now has nothing to do.
    ws.run_once(0);
    assert_eq!(ws.records("task.queued").len(), 12);
}

#[test]
fn children_run_in_parallel_and_the_join_runs_exactly_once() {
    // Four workers that each wait until all four have started: they can only finish if
    // they run at the same time, and then they finish together.
    let ws = TestWorkspace::new(&manager_config("concurrency = 4", ""))
        .agent("manager", &manager_script(4, "worker"))
        .agent(
            "worker",
            &format!(
                r#"touch "$BATON_WORKSPACE/started.$BATON_TASK"
i=0
while [ "$(ls "$BATON_WORKSPACE" | grep -c '^started\.')" -lt 4 ]; do
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
    let ws = TestWorkspace::new(&manager_config(
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
        r#"sleep 0.3; echo "$BATON_INPUT" >> "$BATON_WORKSPACE/reviewed.log""#,
    );
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    let joins = join_files(&ws);
    assert_eq!(joins.len(), 1);
    let reviewed = ws.read("reviewed.log");
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
    let ws = TestWorkspace::new(&manager_config("concurrency = 2", ""))
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
    let ws = TestWorkspace::new(&manager_config("", ""))
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
fn delegation_outside_delegates_to_is_refused_and_the_rest_commits() {
    let config = manager_config("", "").replace(
        "writes = [\"parts\"]",
        "writes = [\"parts\"]\ndelegates_to = [\"worker\"]",
    ) + "\n[agents.legal]\non = []\nrun = [\"agents/worker.sh\"]\nwrites = [\"sections\"]\n";
    let ws = TestWorkspace::new(&config)
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
    let ws = TestWorkspace::new(&manager_config("concurrency = 2", "max_children = 3"))
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
    let ws = TestWorkspace::new(&manager_config("", "max_depth = 0"))
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
    let ws = TestWorkspace::new(COPIER).agent(
        "copier",
        r#"set -eu; cp "$BATON_TASK_FILE" "$BATON_WORKSPACE/task.json""#,
    );
    ws.write("data/q3.csv", "a,b\n");
    ws.write("briefs/sub/notes.md", "notes\n");
    ws.run_once(0);
    ws.publish(
        "briefs/sub/launch.md",
        "+++\nrefs = [\"data/q3.csv\", \"./notes.md\", \"../sub/notes.md\"]\n+++\nGo.\n",
    );
    ws.run_once(0);
    let task: Value = serde_json::from_str(&ws.read("task.json")).unwrap();
    assert_eq!(task["input"], "briefs/sub/launch.md");
    assert_eq!(
        task["refs"],
        serde_json::json!(["data/q3.csv", "briefs/sub/notes.md", "briefs/sub/notes.md"])
    );
    assert_eq!(task["join"], false);
}

#[test]
fn delegate_outside_a_task_publishes_a_brief_as_human() {
    let ws = TestWorkspace::new(&manager_config("", ""))
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
    let out = ws.baton(&["trace", "t-nothing"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn log_follow_shows_delegations_as_they_happen() {
    let ws = TestWorkspace::new(&manager_config("", ""))
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

#[test]
fn status_shows_a_delegator_waiting_for_its_children() {
    let ws = TestWorkspace::new(&manager_config("concurrency = 2", ""))
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
    let ws = TestWorkspace::new(&manager_config("concurrency = 2", ""))
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

// ---------------------------------------------------------------------------------
// baton write, read and lock (DESIGN §6)

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
    let mut holder = Daemon {
        child: ws
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
    };
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
    let ws = TestWorkspace::new(
        r#"
[workspace]
stages = ["briefs", "drafts", "reviews"]

[agents.noter]
on = ["briefs/*.md"]
run = ["agents/noter.sh"]
writes = ["drafts"]
concurrency = 4

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
        r#"echo nope | baton write reviews/x.md 2> "$BATON_WORKSPACE/sneaky.err"
echo $? > "$BATON_WORKSPACE/sneaky.code""#,
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
    assert_eq!(ws.read("sneaky.code").trim(), "2");
    assert!(
        ws.read("sneaky.err")
            .contains("may not write to stage `reviews`")
    );
    assert!(!ws.path("reviews/x.md").exists());
}
