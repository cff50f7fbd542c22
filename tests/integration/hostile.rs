//! Issue 13: hostile input refused. Writes and reads resolve beneath the workspace
//! without following symlinks; a commit is all or nothing; a FIFO or device under an
//! artifact's name is refused instead of hanging or flooding baton.

use std::fs;
use std::os::unix::fs::symlink;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::*;

fn writer(outputs: &str) -> TestWorkspace {
    writer_with("", outputs)
}

/// [`writer`] with `settings` added to its table (such as `sandbox = false`).
fn writer_with(settings: &str, outputs: &str) -> TestWorkspace {
    TestWorkspace::new(&format!(
        r#"
[agents.writer]
on = ["briefs/*.md"]
run = ["agents/writer.sh"]
writes = ["drafts"]
retries = 0
{settings}
"#,
    ))
    .agent("writer", &format!("set -eu\ncd \"$BATON_OUT\"\n{outputs}"))
}

/// A writer that copies its brief into `drafts/`.
fn copier() -> TestWorkspace {
    writer("mkdir -p drafts\ncp \"$BATON_WORKSPACE/$BATON_INPUT\" drafts/")
}

fn dead_error(ws: &TestWorkspace) -> String {
    let dead = ws.finished("dead");
    assert_eq!(dead.len(), 1, "one task dead: {:?}", ws.journal());
    dead[0]["error"].as_str().unwrap_or_default().to_string()
}

fn artifacts(ws: &TestWorkspace) -> Vec<String> {
    ws.records("artifact")
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_commit_never_writes_through_a_symlinked_folder_in_a_stage() {
    let ws = writer("mkdir -p drafts/sub\necho out > drafts/sub/x.md\necho ok > drafts/y.md");
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(ws.path("drafts")).unwrap();
    symlink(outside.path(), ws.path("drafts/sub")).unwrap();
    ws.write("briefs/a.md", "a\n");
    ws.run_once(1);
    assert!(
        fs::read_dir(outside.path()).unwrap().next().is_none(),
        "nothing was written outside the workspace"
    );
    let error = dead_error(&ws);
    assert!(
        error.contains("drafts/sub") && error.contains("symbolic link"),
        "{error}"
    );
    assert!(
        !ws.path("drafts/y.md").exists(),
        "all or nothing: the other output is not committed either"
    );
    assert!(!artifacts(&ws).iter().any(|p| p.starts_with("drafts/")));
}

#[test]
fn baton_read_and_write_refuse_a_symlink_to_a_file_outside() {
    let ws = writer("true");
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "outside secret\n").unwrap();
    fs::create_dir_all(ws.path("drafts")).unwrap();
    symlink(outside.path().join("secret"), ws.path("drafts/link.md")).unwrap();
    symlink(outside.path(), ws.path("drafts/dir")).unwrap();
    for path in ["drafts/link.md", "drafts/dir/secret"] {
        let out = ws.baton(&["read", path]);
        assert_ne!(out.status.code(), Some(0), "{path}: {}", text(&out));
        assert!(
            !stdout(&out).contains("outside secret"),
            "{path}: {}",
            text(&out)
        );
        let says = stderr(&out);
        assert!(
            says.contains("symbolic link") || says.contains("outside the workspace"),
            "{path}: {}",
            text(&out)
        );
    }
    let mut write = ws
        .command(&["write", "drafts/dir/new.md"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    write.stdin.take().unwrap().write_all(b"x\n").unwrap();
    let out = write.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!outside.path().join("new.md").exists());
}

#[test]
fn a_multi_file_commit_with_a_folder_in_the_way_commits_nothing_and_the_daemon_goes_on() {
    let ws = writer("mkdir -p drafts\necho a > drafts/a.md\necho b > drafts/b.md");
    // A folder where the second output must go.
    fs::create_dir_all(ws.path("drafts/b.md/inside")).unwrap();
    ws.write("briefs/one.md", "one\n");
    ws.run_once(1);
    let error = dead_error(&ws);
    assert!(
        error.contains("drafts/b.md") && error.contains("folder"),
        "{error}"
    );
    assert!(!ws.path("drafts/a.md").exists(), "no output became visible");
    assert!(
        ws.records("task.committing").is_empty(),
        "checked before the intent"
    );
    // Restarts work, and so does the next brief once the way is clear.
    fs::remove_dir_all(ws.path("drafts/b.md")).unwrap();
    ws.write("briefs/two.md", "two\n");
    ws.run_once(0);
    assert_eq!(ws.finished("done").len(), 1);
    assert_eq!(ws.read("drafts/a.md"), "a\n");
}

#[test]
fn a_roll_forward_that_cannot_finish_ends_that_task_dead_and_the_daemon_starts() {
    let ws = writer("mkdir -p drafts\necho a > drafts/a.md\necho b > drafts/b.md");
    ws.write("briefs/one.md", "one\n");
    let crashed = ws
        .command(&["run", "--once"])
        .env("BATON_FAILPOINT", "after-commit-intent")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(crashed.status.code(), None, "{}", text(&crashed));
    assert_eq!(ws.records("task.committing").len(), 1);
    // While no daemon runs, a folder appears where an output must go.
    fs::create_dir_all(ws.path("drafts/b.md/inside")).unwrap();
    wait_for(
        "the daemon lock to be free",
        Duration::from_secs(10),
        || ws.status_json()["daemon"]["running"] == Value::Bool(false),
    );
    ws.write("briefs/two.md", "two\n");
    let out = ws.run_once(1);
    let dead = ws.finished("dead");
    assert!(!dead.is_empty(), "{}", text(&out));
    let error = dead[0]["error"].as_str().unwrap();
    assert!(
        error.contains("could not be finished") && error.contains("folder"),
        "{error}"
    );
    // What the first output's rename put in place before the crash stays attributed to
    // nobody: no artifact record was journalled for the dead commit.
    assert!(artifacts(&ws).iter().all(|p| p.starts_with("briefs/")));
    // The rest went on: the second brief's task ran (its commit meets the same folder,
    // so it fails, but it ran).
    assert!(
        ws.records("task.started")
            .iter()
            .any(|r| r["task"] != dead[0]["task"]),
        "{}",
        text(&out)
    );
}

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_fifo_or_device_under_an_artifact_name_neither_hangs_nor_floods_baton() {
    let ws = copier();
    ws.write("briefs/a.md", "a\n");
    ws.run_once(0);
    // A FIFO renamed over a brief, a symlink to /dev/zero and a FIFO beside them.
    let fifo = ws.path(".fifo-tmp");
    mkfifo(&fifo);
    fs::rename(&fifo, ws.path("briefs/a.md")).unwrap();
    mkfifo(&ws.path("briefs/p.md"));
    symlink("/dev/zero", ws.path("briefs/zero.md")).unwrap();
    ws.write("briefs/b.md", "b\n");
    let started = Instant::now();
    ws.run_once(0);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(ws.read("drafts/b.md"), "b\n", "later work goes on");
    let out = ws.baton(&["search", "b"]);
    assert!(out.status.success(), "{}", text(&out));
    for path in ["briefs/a.md", "briefs/zero.md"] {
        let out = ws.baton(&["read", path]);
        assert_ne!(out.status.code(), Some(0), "{path}: {}", text(&out));
        assert!(out.stdout.len() < 1024, "{path}: read no flood");
    }
    // `drop` of a FIFO is refused at once, not waited on.
    let mut drop = ws
        .command(&["drop", ws.path("briefs/p.md").to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_exit(&mut drop, Duration::from_secs(10));
    if code.is_none() {
        let _ = drop.kill();
    }
    let out = drop.wait_with_output().unwrap();
    assert!(code.is_some(), "drop of a FIFO hung");
    assert_ne!(code, Some(0), "{}", text(&out));
    assert!(stderr(&out).contains("FIFO"), "{}", text(&out));
}

#[test]
fn a_hard_link_in_the_staging_tree_to_a_file_outside_is_not_committed() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    fs::write(&secret, "outside\n").unwrap();
    // Unconfined: the sandbox refuses the link itself (see the sandbox tests).
    let ws = writer_with(
        "sandbox = false",
        &format!("mkdir -p drafts\nln {} drafts/x.md", secret.display()),
    );
    ws.write("briefs/a.md", "a\n");
    ws.run_once(1);
    let error = dead_error(&ws);
    assert!(
        error.contains("drafts/x.md") && error.contains("hard link"),
        "{error}"
    );
    assert!(!ws.path("drafts/x.md").exists());
}

#[test]
fn a_journal_deleted_under_the_daemon_stops_appends_and_a_restart_refuses_to_rerun() {
    let ws = copier();
    let daemon = ws.daemon();
    ws.write("briefs/a.md", "a\n");
    wait_for("a done", Duration::from_secs(20), || {
        ws.path("drafts/a.md").exists()
    });
    fs::remove_file(ws.path(".baton/journal/journal.jsonl")).unwrap();
    ws.write("briefs/b.md", "b\n");
    wait_for("the daemon to say so", Duration::from_secs(20), || {
        daemon
            .log(&ws)
            .contains("was deleted while baton was using it")
    });
    // It stops by itself, saying why, and nothing was dispatched after.
    let mut daemon = daemon;
    let code = wait_exit(&mut daemon.child, Duration::from_secs(20));
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}");
    assert!(!ws.path("drafts/b.md").exists(), "nothing dispatched after");
    // A drop now would begin a new journal: refused too.
    fs::write(ws.path("c.md"), "c\n").unwrap();
    let out = ws.baton(&["drop", ws.path("c.md").to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("run every brief again"),
        "{}",
        text(&out)
    );
    assert!(
        !ws.path(".baton/journal/journal.jsonl").exists(),
        "no new journal begun"
    );
    // A restart would begin a new journal and run `a` again: it refuses.
    let out = ws
        .command(&["run", "--once"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stderr(&out).contains("the journal in"), "{}", text(&out));
    assert!(
        stderr(&out).contains("run every brief again"),
        "{}",
        text(&out)
    );
    assert_eq!(ws.read("drafts/a.md"), "a\n");
}

#[test]
fn names_with_control_characters_are_refused_with_the_rule() {
    let ws = writer("mkdir -p drafts\necho x > 'drafts/two\nlines.md'");
    ws.write("briefs/a.md", "a\n");
    ws.run_once(1);
    let error = dead_error(&ws);
    assert!(error.contains("control character"), "{error}");
    assert!(!error.contains('\n'), "the reason is one line: {error:?}");
    let odd = ws.path("odd\u{1b}[31m.md");
    fs::write(&odd, "x\n").unwrap();
    let out = ws.baton(&["drop", odd.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stderr(&out).contains("control character"), "{}", text(&out));
    assert!(
        !stderr(&out).contains('\u{1b}'),
        "printed escaped: {}",
        text(&out)
    );
}

#[test]
fn a_symlink_or_fifo_in_a_stage_is_journalled_as_rejected_once() {
    let ws = writer("true");
    fs::create_dir_all(ws.path("briefs")).unwrap();
    symlink("/etc/hostname", ws.path("briefs/link.md")).unwrap();
    mkfifo(&ws.path("briefs/pipe.md"));
    ws.run_once(0);
    let rejected = ws.records("rejected");
    let said = |path: &str| -> String {
        rejected
            .iter()
            .find(|r| r["path"] == path)
            .map(|r| r["error"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(
        said("briefs/link.md").contains("symbolic link"),
        "{rejected:?}"
    );
    assert!(said("briefs/pipe.md").contains("FIFO"), "{rejected:?}");
    assert!(ws.records("task.queued").is_empty());
    ws.run_once(0);
    assert_eq!(ws.records("rejected").len(), 2, "not journalled again");
}

#[test]
fn a_search_index_deleted_under_the_daemon_is_rebuilt() {
    let ws = copier();
    let daemon = ws.daemon();
    ws.write("briefs/a.md", "alpha\n");
    wait_for("a done", Duration::from_secs(20), || {
        ws.path("drafts/a.md").exists()
    });
    // The writer may be adding a file as it goes: removed until it is gone.
    wait_for("the index to be removed", Duration::from_secs(10), || {
        let _ = fs::remove_dir_all(ws.path(".baton/index"));
        !ws.path(".baton/index").exists()
    });
    ws.write("briefs/b.md", "bravo\n");
    wait_for("b done", Duration::from_secs(20), || {
        ws.path("drafts/b.md").exists()
    });
    ws.write("briefs/c.md", "charlie\n");
    wait_for("the index to be rebuilt", Duration::from_secs(30), || {
        daemon.log(&ws).contains("search index was deleted")
    });
    wait_for(
        "search to find what came after",
        Duration::from_secs(30),
        || {
            let out = ws.baton(&["search", "charlie"]);
            stdout(&out).contains("drafts/c.md")
        },
    );
    let out = ws.baton(&["search", "alpha"]);
    assert!(stdout(&out).contains("drafts/a.md"), "{}", text(&out));
    daemon.stop();
}

#[test]
fn outputs_past_the_agents_limits_are_refused_before_they_are_read() {
    let ws = TestWorkspace::new(
        r#"
[agents.many]
on = ["briefs/many*.md"]
run = ["agents/many.sh"]
writes = ["drafts"]
retries = 0
max_output_files = 3

[agents.big]
on = ["briefs/big*.md"]
run = ["agents/big.sh"]
writes = ["drafts"]
retries = 0
max_output_bytes = "1KiB"
"#,
    )
    .agent(
        "many",
        "set -eu\nmkdir -p \"$BATON_OUT/drafts\"\nfor i in 1 2 3 4; do echo $i > \"$BATON_OUT/drafts/m$i.md\"; done",
    )
    .agent(
        "big",
        "set -eu\nmkdir -p \"$BATON_OUT/drafts\"\nhead -c 2048 /dev/zero > \"$BATON_OUT/drafts/big.md\"",
    );
    ws.write("briefs/many.md", "m\n");
    ws.write("briefs/big.md", "b\n");
    ws.run_once(1);
    let dead = ws.finished("dead");
    let errors: Vec<&str> = dead.iter().map(|r| r["error"].as_str().unwrap()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("max_output_files") && e.contains("limit of 3")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("max_output_bytes") && e.contains("limit of 1024")),
        "{errors:?}"
    );
    assert!(
        ws.files_in("drafts").is_empty(),
        "{:?}",
        ws.files_in("drafts")
    );
}

/// Runs `mount` with `args`; false if this machine does not let the tests mount.
fn mount(args: &[&str]) -> bool {
    std::process::Command::new("mount")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Unmounts a test's mount when it ends, however it ends.
struct Unmount(String);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l", &self.0])
            .status();
    }
}

/// A tmpfs of `size` mounted at `path` until the guard is dropped, or `None` (said on
/// stderr) where this machine does not let the tests mount: the test is then skipped.
fn tmpfs_at(path: &str, size: &str) -> Option<Unmount> {
    if !mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", path]) {
        eprintln!("skipped: this machine does not let the tests mount a tmpfs");
        return None;
    }
    Some(Unmount(path.to_string()))
}

#[test]
fn a_full_disk_pauses_dispatch_without_attempts_and_it_goes_on_when_space_returns() {
    let ws = copier();
    ws.run_once(0); // makes .baton/
    let runs = ws.path(".baton/runs");
    let runs_arg = runs.to_str().unwrap();
    // The attempt folders' disk: 8 MiB, under the 64 MiB an attempt needs free.
    let Some(_unmount) = tmpfs_at(runs_arg, "8m") else {
        return;
    };
    let daemon = ws.daemon();
    ws.write("briefs/a.md", "a\n");
    wait_for("dispatch to pause", Duration::from_secs(20), || {
        daemon.log(&ws).contains("dispatch pauses")
    });
    wait_for("a second pause", Duration::from_secs(20), || {
        daemon.log(&ws).matches("dispatch pauses").count() >= 2
    });
    assert!(ws.records("task.started").is_empty(), "no attempt started");
    assert!(ws.finished("failed").is_empty() && ws.finished("dead").is_empty());
    assert!(
        fs::read_dir(&runs).unwrap().next().is_none(),
        "no attempt folder was made"
    );
    let pauses = daemon.log(&ws).matches("dispatch pauses").count();
    assert!(pauses <= 4, "the pause doubles, it does not loop: {pauses}");
    // Space returns: the task runs, its output copied across file systems.
    assert!(mount(&["-o", "remount,size=512m", runs_arg]));
    wait_for("the task to be done", Duration::from_secs(60), || {
        ws.path("drafts/a.md").exists()
    });
    assert_eq!(ws.read("drafts/a.md"), "a\n");
    daemon.stop();
}

#[test]
fn an_attempt_that_fails_on_a_full_disk_spends_no_retry_and_runs_again_when_space_returns() {
    // retries = 0: a failure counted against the agent would end the task dead. The
    // first attempt fills the disk of the attempt folders and fails for it.
    let ws = writer(
        r#"mkdir -p drafts
if [ "$BATON_ATTEMPT" = 1 ]; then head -c 200000000 /dev/zero > drafts/filler; fi
cp "$BATON_WORKSPACE/$BATON_INPUT" drafts/"#,
    );
    ws.run_once(0); // makes .baton/
    let runs = ws.path(".baton/runs");
    let runs_arg = runs.to_str().unwrap();
    // 96 MiB: room to start an attempt (64 MiB free), not to finish this one.
    let Some(_unmount) = tmpfs_at(runs_arg, "96m") else {
        return;
    };
    let daemon = ws.daemon();
    ws.write("briefs/a.md", "a\n");
    wait_for(
        "the failure on a full disk",
        Duration::from_secs(30),
        || daemon.log(&ws).contains("not counted as a failure"),
    );
    wait_for("dispatch to pause", Duration::from_secs(20), || {
        daemon.log(&ws).contains("dispatch pauses")
    });
    assert!(ws.finished("failed").is_empty() && ws.finished("dead").is_empty());
    assert_eq!(
        ws.records("task.started").len(),
        1,
        "no attempt while the disk is full"
    );
    // Space returns: the task runs again, on its full retry budget, and is done.
    assert!(mount(&["-o", "remount,size=512m", runs_arg]));
    wait_for("the task to be done", Duration::from_secs(60), || {
        ws.path("drafts/a.md").exists()
    });
    daemon.stop();
    assert_eq!(ws.read("drafts/a.md"), "a\n");
    assert!(!ws.path("drafts/filler").exists());
    let done = ws.finished("done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["attempt"], 2);
    assert!(ws.finished("failed").is_empty(), "{:?}", ws.journal());
}

#[test]
fn a_commit_with_no_room_on_its_stages_disk_waits_for_room_and_spends_no_retry() {
    let ws = copier();
    ws.run_once(0); // makes .baton/
    fs::create_dir_all(ws.path("drafts")).unwrap();
    let drafts = ws.path("drafts");
    let drafts_arg = drafts.to_str().unwrap();
    // `drafts/` on a disk of its own, with less free than a commit keeps spare.
    let Some(_unmount) = tmpfs_at(drafts_arg, "1m") else {
        return;
    };
    let daemon = ws.daemon();
    ws.write("briefs/a.md", "a\n");
    wait_for(
        "the commit to find no room",
        Duration::from_secs(30),
        || daemon.log(&ws).contains("not counted as a failure"),
    );
    let log = daemon.log(&ws);
    assert!(log.contains("the disk of `drafts` has"), "{log}");
    assert!(ws.finished("failed").is_empty() && ws.finished("dead").is_empty());
    assert!(
        ws.records("task.committing").is_empty(),
        "nothing was begun"
    );
    assert!(mount(&["-o", "remount,size=64m", drafts_arg]));
    wait_for("the task to be done", Duration::from_secs(60), || {
        ws.path("drafts/a.md").exists()
    });
    daemon.stop();
    assert_eq!(ws.read("drafts/a.md"), "a\n");
    assert!(ws.finished("failed").is_empty(), "{:?}", ws.journal());
}

#[test]
fn a_file_the_watcher_missed_is_found_by_the_periodic_reconcile() {
    let ws = copier();
    // The watcher is made deaf to paths holding "missed": only the reconcile sees them.
    let run = |every: &str| {
        ws.daemon_env(
            &["run"],
            &[
                ("BATON_TEST_DEAF", "missed"),
                ("BATON_TEST_RECONCILE_EVERY", every),
            ],
        )
    };
    let daemon = run("100000");
    // Once a brief published after the start is done, the start's walk of the stages
    // (which no deafness hides) is long over.
    ws.publish("briefs/warm.md", "w\n");
    wait_for("the warm-up brief", Duration::from_secs(15), || {
        ws.path("drafts/warm.md").exists()
    });
    ws.publish("briefs/missed-1.md", "1\n");
    ws.publish("briefs/heard.md", "h\n");
    wait_for(
        "the brief the watcher hears",
        Duration::from_secs(15),
        || ws.path("drafts/heard.md").exists(),
    );
    // Published before it, yet not seen: the watcher is deaf and there is no reconcile.
    assert!(
        !ws.path("drafts/missed-1.md").exists(),
        "the watcher was not deaf"
    );
    daemon.stop();

    let _daemon = run("1");
    ws.publish("briefs/missed-2.md", "2\n");
    fs::create_dir_all(ws.path("briefs/missed-dir")).unwrap();
    ws.publish("briefs/missed-dir/3.md", "3\n");
    wait_for(
        "the reconcile to find them",
        Duration::from_secs(15),
        || {
            ws.path("drafts/missed-2.md").exists()
                && artifacts(&ws).contains(&"briefs/missed-dir/3.md".to_string())
        },
    );
}

#[test]
fn a_file_whose_name_is_no_workspace_path_is_journalled_as_rejected_once() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let ws = copier();
    fs::create_dir_all(ws.path("briefs")).unwrap();
    // Found by the walk at start: a Latin-1 name, not UTF-8.
    let latin1 = ws
        .path("briefs")
        .join(OsStr::from_bytes(b"r\xe9sum\xe9.md"));
    fs::write(&latin1, "x\n").unwrap();
    let daemon = ws.daemon_env(&["run"], &[("BATON_TEST_RECONCILE_EVERY", "100000")]);
    ws.publish("briefs/warm.md", "w\n");
    wait_for("the warm-up brief", Duration::from_secs(15), || {
        ws.path("drafts/warm.md").exists()
    });
    // Heard by the watcher (the periodic reconcile is off): a newline in the name.
    fs::write(ws.path("briefs/two\nlines.md"), "y\n").unwrap();
    wait_for("both names rejected", Duration::from_secs(15), || {
        ws.records("rejected").len() == 2
    });
    daemon.stop();
    let rejected = ws.records("rejected");
    let said = |path: &str| -> String {
        rejected
            .iter()
            .find(|r| r["path"] == path)
            .map(|r| r["error"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(
        said("briefs/r\u{FFFD}sum\u{FFFD}.md").contains("not valid UTF-8"),
        "{rejected:?}"
    );
    let newline = said("briefs/two\u{FFFD}lines.md");
    assert!(newline.contains("control character"), "{rejected:?}");
    assert!(
        !newline.contains('\n'),
        "the error shows the name escaped: {newline:?}"
    );
    assert_eq!(ws.records("task.queued").len(), 1, "only the warm-up ran");
    let status = stdout(&ws.baton(&["status"]));
    assert!(status.contains("two\u{FFFD}lines.md"), "{status}");

    ws.run_once(0);
    assert_eq!(ws.records("rejected").len(), 2, "not journalled again");
    assert!(latin1.exists(), "the file is left alone");
}

#[test]
fn drop_of_a_large_file_copies_it_in_bounded_memory() {
    let ws = writer("true");
    ws.run_once(0); // makes .baton/
    let big = ws.path("big.md");
    const SIZE: u64 = 256 << 20;
    fs::File::create(&big).unwrap().set_len(SIZE).unwrap(); // sparse: quick to make
    let out = ws.baton(&["drop", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fs::metadata(ws.path("briefs/big.md")).unwrap().len(), SIZE);
    // The largest child this test process has waited for; none of baton's others comes
    // near the file's size.
    // SAFETY: getrusage fills the struct it is given; no other memory is involved.
    let peak_kib = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss as u64
    };
    assert!(
        peak_kib < (SIZE >> 10) / 2,
        "drop held {peak_kib} KiB for a {} MiB file",
        SIZE >> 20
    );
}

#[test]
fn drop_to_of_a_file_past_the_head_rewrites_the_head_and_copies_the_rest_whole() {
    let ws = writer("true");
    ws.run_once(0);
    // "é" (two bytes) is cut by the 1 MiB head; the file goes on well past it.
    let mut brief = "+++\ntitle = \"big\"\n+++\n".to_string();
    brief.push_str(&"a".repeat((1 << 20) - brief.len() - 1));
    brief.push('é');
    brief.push_str(&"b".repeat(3 << 20));
    let src = ws.path("big.md");
    fs::write(&src, &brief).unwrap();
    let out = ws.baton(&["drop", src.to_str().unwrap(), "--to", "writer"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dropped = fs::read_to_string(ws.path("briefs/big.md")).unwrap();
    assert!(dropped.starts_with("+++\n"), "{}", &dropped[..80]);
    let head = &dropped[..200];
    assert!(
        head.contains("to = \"writer\"") && head.contains("title = \"big\""),
        "{head}"
    );
    let body = brief
        .split_once("+++\n")
        .unwrap()
        .1
        .split_once("+++\n")
        .unwrap()
        .1;
    assert!(
        dropped.ends_with(body),
        "the body is copied whole, the cut character too"
    );
}
