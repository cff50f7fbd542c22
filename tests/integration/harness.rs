//! The test harness: a temporary workspace with agents, the real binary run against it, a daemon stopped when dropped, and waits on conditions with deadlines, never bare sleeps.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const BATON: &str = env!("CARGO_BIN_EXE_baton");

/// The first line of every sandboxed attempt's `stderr.log`, before the agent's own.
pub(crate) const SANDBOX_LINE: &str =
    "baton: sandbox landlock: writes only to $BATON_OUT, $TMPDIR and /dev/null\n";

/// A temporary workspace with a config and agent scripts.
pub(crate) struct TestWorkspace {
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    /// Outside the workspace: where agents leave what a test observes (`$MARKS`),
    /// granted to them by [`TestWorkspace::marked`] past the sandbox.
    pub(crate) marks: PathBuf,
}

impl TestWorkspace {
    pub(crate) fn new(config: &str) -> TestWorkspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().unwrap().join("ws");
        fs::create_dir_all(root.join("agents")).unwrap();
        fs::write(root.join("baton.toml"), config).unwrap();
        let marks = root.with_file_name("marks");
        TestWorkspace {
            _dir: dir,
            root,
            marks,
        }
    }

    /// [`TestWorkspace::new`], every agent also allowed to write `$MARKS`, a folder
    /// outside the workspace where its script leaves what the test checks.
    pub(crate) fn marked(config: &str) -> TestWorkspace {
        let ws = TestWorkspace::new("");
        fs::create_dir_all(&ws.marks).unwrap();
        let grant = format!("sandbox_writes = [\"{}\"]", ws.marks.display());
        let mut text = String::new();
        for line in config.lines() {
            text.push_str(line);
            text.push('\n');
            if line.trim_start().starts_with("[agents.") {
                text.push_str(&grant);
                text.push('\n');
            }
        }
        fs::write(ws.root.join("baton.toml"), text).unwrap();
        ws
    }

    /// The mark `name` an agent left in `$MARKS`.
    pub(crate) fn mark(&self, name: &str) -> String {
        fs::read_to_string(self.marks.join(name))
            .unwrap_or_else(|e| panic!("reading the mark {name}: {e}"))
    }

    /// A temporary workspace holding a copy of the folder `src`.
    pub(crate) fn copy_of(src: &Path) -> TestWorkspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().unwrap().join("ws");
        for file in walk(src) {
            let target = root.join(file.strip_prefix(src).unwrap());
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::copy(&file, &target).unwrap();
        }
        let marks = root.with_file_name("marks");
        TestWorkspace {
            _dir: dir,
            root,
            marks,
        }
    }

    /// Writes `agents/NAME.sh` exactly as `bytes`, with mode `mode`.
    pub(crate) fn raw_agent(self, name: &str, bytes: &[u8], mode: u32) -> TestWorkspace {
        let path = self.root.join("agents").join(format!("{name}.sh"));
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    /// Writes `agents/NAME.sh` (executable); use it as `run = ["agents/NAME.sh"]`.
    pub(crate) fn agent(self, name: &str, body: &str) -> TestWorkspace {
        let path = self.root.join("agents").join(format!("{name}.sh"));
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub(crate) fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// Writes outside the stages, then renames into place: how a careful writer
    /// publishes.
    pub(crate) fn publish(&self, rel: &str, content: &str) {
        let tmp = self.path(&format!("incoming-{}", rel.replace('/', "_")));
        fs::write(&tmp, content).unwrap();
        let target = self.path(rel);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::rename(tmp, target).unwrap();
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BATON);
        c.arg("-w")
            .arg(&self.root)
            .args(args)
            .env("NO_COLOR", "1")
            .env("MARKS", &self.marks)
            .env_remove("RUST_LOG");
        c
    }

    pub(crate) fn baton(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("running baton")
    }

    /// `baton run --once`, expecting exit code `code`. A daemon that never drains is
    /// stopped after two minutes and fails the test, rather than hanging it.
    pub(crate) fn run_once(&self, code: i32) -> Output {
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

    /// `baton run`, started once it has taken its lock and watches the stages; its
    /// output goes to `daemon.log` in the workspace root.
    pub(crate) fn daemon(&self) -> Daemon {
        self.daemon_with(&["run"])
    }

    /// [`TestWorkspace::daemon`] with other arguments (`run --once`).
    pub(crate) fn daemon_with(&self, args: &[&str]) -> Daemon {
        self.daemon_env(args, &[])
    }

    /// [`TestWorkspace::daemon_with`], with these variables in its environment.
    pub(crate) fn daemon_env(&self, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = fs::File::create(self.root.join("daemon.log")).unwrap();
        let child = self
            .command(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting the daemon");
        let log = self.root.join("daemon.log");
        let lock = self.path(".baton/daemon.lock");
        let daemon = Daemon {
            child,
            lock: Some(lock.clone()),
        };
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
    pub(crate) fn status_json(&self) -> Value {
        let out = self.baton(&["status", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    }

    pub(crate) fn journal_exists(&self) -> bool {
        self.path(".baton/journal/journal.jsonl").exists()
    }

    /// Every entry, across the journal's segments (`journal.jsonl*`, in name order,
    /// compressed ones decoded), as `zstdcat -f .baton/journal/journal.jsonl*` reads it.
    pub(crate) fn journal(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = fs::read_dir(self.path(".baton/journal"))
            .map(|dir| dir.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("journal.jsonl") && !name.contains(".tmp-")
        });
        names.sort();
        let mut text = Vec::new();
        let mut read_plain: Option<PathBuf> = None;
        for path in names {
            let compressed = path.extension().is_some_and(|e| e == "zst");
            if compressed && read_plain.as_ref() == Some(&path.with_extension("")) {
                continue; // compressed while being read: the plain one was read
            }
            let Ok(bytes) = fs::read(&path) else {
                continue; // compressed meanwhile: its .zst is next in the list
            };
            if compressed {
                text.extend(zstd::stream::decode_all(&bytes[..]).unwrap());
            } else {
                text.extend(bytes);
                read_plain = Some(path);
            }
        }
        String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub(crate) fn records(&self, kind: &str) -> Vec<Value> {
        self.journal()
            .into_iter()
            .filter(|r| r["kind"] == kind)
            .collect()
    }

    pub(crate) fn finished(&self, status: &str) -> Vec<Value> {
        self.records("task.finished")
            .into_iter()
            .filter(|r| r["status"] == status)
            .collect()
    }

    pub(crate) fn files_in(&self, stage: &str) -> Vec<String> {
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

pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
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
pub(crate) struct Daemon {
    pub(crate) child: Child,
    /// The workspace's daemon lock, for [`Daemon::kill9`] to wait on.
    lock: Option<PathBuf>,
}

impl Daemon {
    /// A process to stop as a daemon is stopped.
    pub(crate) fn of(child: Child) -> Daemon {
        Daemon { child, lock: None }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: kill(2) sends a signal to the daemon's pid; no memory involved.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM and wait for the exit code.
    /// The daemon's output so far.
    pub(crate) fn log(&self, ws: &TestWorkspace) -> String {
        fs::read_to_string(ws.path("daemon.log")).unwrap_or_default()
    }

    pub(crate) fn stop(mut self) -> Option<i32> {
        self.signal(libc::SIGTERM);
        wait_exit(&mut self.child, Duration::from_secs(20))
    }

    /// SIGKILL, then wait until the daemon lock is free: seen held for a moment after
    /// the daemon was reaped (by what, not found yet; see the issue 12 note).
    pub(crate) fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        if let Some(Ok(lock)) = self.lock.as_ref().map(fs::File::open) {
            wait_for(
                "the killed daemon's lock to be free",
                Duration::from_secs(10),
                || {
                    // SAFETY: flock on a descriptor this function owns; no memory involved.
                    let free = unsafe {
                        libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0
                    };
                    if free {
                        // SAFETY: as above, giving back the lock just taken.
                        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) };
                    }
                    free
                },
            );
        }
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

pub(crate) fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
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
pub(crate) fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a command failed with `code` and said `says` on stderr.
pub(crate) fn fails_with(out: &Output, code: i32, says: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    assert!(stderr(out).contains(says), "{}", text(out));
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn process_alive(pid: i32) -> bool {
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

/// The 2025-11-25 handshake as a client writes it, `initialize` with id 1.
pub(crate) const MCP_HANDSHAKE: [&str; 2] = [
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
];

/// `baton mcp` fed the handshake and then `lines` at once, its input then closed: how
/// it exited (within 20 s) and its replies, each line of stdout parsed (stdout carries
/// only protocol).
pub(crate) fn mcp_exchange(ws: &TestWorkspace, lines: &[&str]) -> (Option<i32>, Vec<Value>) {
    use std::io::Write as _;
    let mut child = ws
        .command(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in MCP_HANDSHAKE.iter().chain(lines) {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let exited = wait_exit(&mut child, Duration::from_secs(20));
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let replies = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stdout is only protocol: {l:?}: {e}"))
        })
        .collect();
    (exited, replies)
}
