//! Issue 12: the derived state store. A crash between a journal append and the store's
//! update loses and doubles nothing; a deleted or corrupt store is rebuilt from the
//! journal; `baton log` reads only what it prints.

use std::collections::HashMap;
use std::fs;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::harness::*;

const PIPELINE: &str = r#"
[agents.writer]
on = ["briefs/*.md"]
run = ["agents/writer.sh"]
writes = ["drafts"]
concurrency = 2

[agents.reviewer]
on = ["drafts/*.md"]
run = ["agents/reviewer.sh"]
writes = ["reviews"]
"#;

fn pipeline() -> TestWorkspace {
    pipeline_with(PIPELINE)
}

/// The writer → reviewer pipeline, under `config`.
fn pipeline_with(config: &str) -> TestWorkspace {
    TestWorkspace::new(config)
        .agent(
            "writer",
            r#"set -eu
mkdir -p "$BATON_OUT/drafts"
cp "$BATON_INPUT" "$BATON_OUT/drafts/$(basename "$BATON_INPUT")""#,
        )
        .agent(
            "reviewer",
            r#"set -eu
mkdir -p "$BATON_OUT/reviews"
echo ok > "$BATON_OUT/reviews/$(basename "$BATON_INPUT")""#,
        )
}

/// What `status --json` says, without what changes from one call to the next.
fn settled_status(ws: &TestWorkspace) -> (u64, usize, usize, usize) {
    let s = ws.status_json();
    let len = |k: &str| s[k].as_array().map_or(usize::MAX, Vec::len);
    (
        s["done"].as_u64().unwrap(),
        len("queued"),
        len("dead"),
        len("interrupted"),
    )
}

/// Each (agent, input) done exactly once.
fn done_once(ws: &TestWorkspace) -> HashMap<String, usize> {
    let mut done: HashMap<String, usize> = HashMap::new();
    let queued: HashMap<String, String> = ws
        .records("task.queued")
        .iter()
        .map(|r| {
            (
                r["task"].as_str().unwrap().to_string(),
                format!(
                    "{} {}",
                    r["agent"].as_str().unwrap(),
                    r["input"].as_str().unwrap()
                ),
            )
        })
        .collect();
    for r in ws.finished("done") {
        *done
            .entry(queued[r["task"].as_str().unwrap()].clone())
            .or_default() += 1;
    }
    done
}

#[test]
fn a_crash_between_a_journal_append_and_the_store_update_loses_and_doubles_nothing() {
    for nth in [1, 3, 5, 8, 12] {
        let ws = pipeline();
        for i in 0..3 {
            ws.write(&format!("briefs/b{i}.md"), &format!("brief {i}\n"));
        }
        let crashed = ws
            .command(&["run", "--once"])
            .env("BATON_FAILPOINT", format!("after-journal-append:{nth}"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            crashed.status.code(),
            None,
            "hit {nth}: the daemon was meant to abort: {}",
            text(&crashed)
        );
        assert!(stderr(&crashed).contains("failpoint"), "{}", text(&crashed));
        // The aborted daemon's agents may outlive it for a moment.
        wait_for(
            "the daemon lock to be free",
            Duration::from_secs(10),
            || ws.status_json()["daemon"]["running"] == Value::Bool(false),
        );
        ws.run_once(0);
        let done = done_once(&ws);
        assert_eq!(done.len(), 6, "hit {nth}: every task once: {done:?}");
        assert!(
            done.values().all(|n| *n == 1),
            "hit {nth}: a task ran twice: {done:?}"
        );
        assert_eq!(settled_status(&ws), (6, 0, 0, 0), "hit {nth}");
        // The store caught up agrees with one rebuilt from the journal alone.
        fs::remove_file(ws.path(".baton/state.db")).unwrap();
        assert_eq!(settled_status(&ws), (6, 0, 0, 0), "hit {nth}, rebuilt");
    }
}

#[test]
fn a_deleted_or_corrupt_store_is_rebuilt_from_the_journal() {
    let ws = pipeline();
    ws.write("briefs/a.md", "a\n");
    ws.write("briefs/b.md", "b\n");
    ws.run_once(0);
    let before = ws.status_json();
    let who = stdout(&ws.baton(&["who", "drafts/a.md"]));
    assert!(who.contains("writer"), "{who}");
    let same = |ws: &TestWorkspace, what: &str| {
        let now = ws.status_json();
        assert_eq!(now["done"], before["done"], "{what}");
        assert_eq!(now["dead"], before["dead"], "{what}");
        assert_eq!(stdout(&ws.baton(&["who", "drafts/a.md"])), who, "{what}");
    };
    let db = ws.path(".baton/state.db");
    fs::remove_file(&db).unwrap();
    same(&ws, "deleted");
    assert!(db.is_file(), "status rebuilt the store");
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", db.display()));
    }
    fs::write(
        &db,
        b"not a database at all, but long enough to look like a header...",
    )
    .unwrap();
    same(&ws, "corrupt");
    let out = ws.baton(&["index", "--rebuild"]);
    assert!(out.status.success(), "{}", text(&out));
    same(&ws, "index --rebuild");
    // A store of another journal is not trusted: a new journal, a new store.
    fs::remove_file(ws.path(".baton/journal/journal.jsonl")).unwrap();
    let now = ws.status_json();
    assert_eq!(now["done"], Value::from(0), "{now}");
}

#[test]
fn a_running_daemon_sees_what_other_processes_applied_to_the_store_first() {
    // `retry` applies its record to the store before the daemon reads it: the daemon
    // must still run the task again.
    let ws = TestWorkspace::new(
        r#"
[agents.flaky]
on = ["briefs/*.md"]
run = ["agents/flaky.sh"]
writes = ["drafts"]
retries = 0
"#,
    )
    .agent(
        "flaky",
        r#"set -eu
if [ -f "$BATON_WORKSPACE/fixed" ]; then
  mkdir -p "$BATON_OUT/drafts"; cp "$BATON_INPUT" "$BATON_OUT/drafts/"
else
  exit 3
fi"#,
    );
    let daemon = ws.daemon();
    ws.write("briefs/a.md", "a\n");
    wait_for("the task to die", Duration::from_secs(20), || {
        !ws.finished("dead").is_empty()
    });
    let task = ws.finished("dead")[0]["task"].as_str().unwrap().to_string();
    ws.write("fixed", "");
    // A report between the retry and the daemon's read applies it to the store first.
    let out = ws.baton(&["retry", &task]);
    assert!(out.status.success(), "{}", text(&out));
    let _ = ws.baton(&["status"]);
    wait_for(
        "the retried task to be done",
        Duration::from_secs(20),
        || !ws.finished("done").is_empty(),
    );
    assert_eq!(ws.read("drafts/a.md"), "a\n");
    daemon.stop();
}

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", text(out));
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn log_prints_the_last_n_and_filters_by_time_agent_and_task() {
    let ws = pipeline();
    for i in 0..3 {
        ws.write(&format!("briefs/b{i}.md"), &format!("brief {i}\n"));
    }
    ws.run_once(0);
    let journal = ws.journal();
    assert!(journal.len() > 10, "{}", journal.len());

    let last = json_lines(&ws.baton(&["log", "-n", "4", "--json"]));
    assert_eq!(last, journal[journal.len() - 4..].to_vec());
    let all = json_lines(&ws.baton(&["log", "--json"]));
    assert_eq!(all, journal);
    let text_last = stdout(&ws.baton(&["log", "-n", "1"]));
    assert_eq!(text_last.lines().count(), 1, "{text_last}");

    // One reviewer task: every record about it, and nothing else.
    let reviewer: Vec<&Value> = journal
        .iter()
        .filter(|r| r["kind"] == "task.queued" && r["agent"] == "reviewer")
        .collect();
    let task = reviewer[1]["task"].as_str().unwrap();
    let about: Vec<Value> = journal
        .iter()
        .filter(|r| r["task"].as_str() == Some(task))
        .cloned()
        .collect();
    assert!(about.len() >= 3, "{about:?}");
    assert_eq!(
        json_lines(&ws.baton(&["log", "--task", &task[2..8], "--json"])),
        about
    );
    assert_eq!(
        json_lines(&ws.baton(&["log", "--task", task, "-n", "1", "--json"])),
        about[about.len() - 1..].to_vec()
    );

    let reviewer_tasks: Vec<&str> = reviewer
        .iter()
        .map(|r| r["task"].as_str().unwrap())
        .collect();
    let by_reviewer: Vec<Value> = journal
        .iter()
        .filter(|r| {
            r["by"] == "reviewer"
                || (r["kind"] != "artifact"
                    && r["task"]
                        .as_str()
                        .is_some_and(|t| reviewer_tasks.contains(&t)))
        })
        .cloned()
        .collect();
    assert_eq!(
        json_lines(&ws.baton(&["log", "--agent", "reviewer", "--json"])),
        by_reviewer
    );

    assert!(json_lines(&ws.baton(&["log", "--since", "2099-01-01", "--json"])).is_empty());
    assert!(json_lines(&ws.baton(&["log", "--until", "2020-01-01", "--json"])).is_empty());
    assert_eq!(
        json_lines(&ws.baton(&["log", "--since", "1day", "--json"])),
        journal
    );
    let first_ts = journal[0]["ts"].as_str().unwrap();
    assert_eq!(
        json_lines(&ws.baton(&["log", "--until", first_ts, "--json"])),
        journal
            .iter()
            .filter(|r| r["ts"].as_str() <= Some(first_ts))
            .cloned()
            .collect::<Vec<_>>()
    );
    fails_with(
        &ws.baton(&["log", "--since", "last tuesday"]),
        2,
        "is not a time",
    );
}

#[test]
fn processes_that_find_the_store_missing_at_once_all_succeed() {
    let ws = pipeline();
    ws.write("briefs/a.md", "a\n");
    ws.run_once(0);
    for round in 0..3 {
        let db = ws.path(".baton/state.db");
        fs::remove_file(&db).unwrap();
        let children: Vec<_> = (0..6)
            .map(|_| {
                ws.command(&["status", "--json"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", text(&out));
            let s: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(s["done"], Value::from(2), "round {round}");
        }
    }
    let left: Vec<String> = fs::read_dir(ws.path(".baton"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("rebuilding"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `baton run --once` with the racy window shortened to nothing, so a stat recorded a
/// moment ago vouches for the file (in real use it must be 2 s old).
fn run_once_trusting_stat(ws: &TestWorkspace) {
    let out = ws
        .command(&["run", "--once"])
        .env("BATON_RACY_WINDOW_MS", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// The `artifact` records of `path`, as hashes.
fn versions_of(ws: &TestWorkspace, path: &str) -> Vec<String> {
    ws.records("artifact")
        .iter()
        .filter(|r| r["path"] == path)
        .map(|r| r["hash"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_restart_checks_files_by_stat_yet_sees_an_edit_that_kept_size_and_mtime() {
    let ws = pipeline();
    ws.write("briefs/a.md", "aaaa\n");
    ws.write("briefs/b.md", "bbbb\n");
    ws.run_once(0);
    run_once_trusting_stat(&ws); // records the files' stat (hashed just now: racy before)
    let before = ws.journal().len();
    run_once_trusting_stat(&ws);
    assert_eq!(
        ws.journal().len(),
        before,
        "an unchanged restart journals nothing"
    );
    // Same size, same inode, mtime put back: only the ctime tells. It must be seen.
    let touch_r = |from: &str, to: &str| {
        let ok = std::process::Command::new("touch")
            .arg("-r")
            .arg(ws.path(from))
            .arg(ws.path(to))
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    fs::write(ws.path("mtime.ref"), "").unwrap();
    touch_r("briefs/a.md", "mtime.ref");
    fs::write(ws.path("briefs/a.md"), "AAAA\n").unwrap();
    touch_r("mtime.ref", "briefs/a.md");
    run_once_trusting_stat(&ws);
    assert_eq!(
        versions_of(&ws, "briefs/a.md").len(),
        2,
        "the edit was missed"
    );
    assert_eq!(ws.read("drafts/a.md"), "AAAA\n");
    assert_eq!(versions_of(&ws, "briefs/b.md").len(), 1);
}

#[test]
fn a_new_agent_gets_the_files_already_there_after_a_restart() {
    let ws = pipeline();
    ws.write("briefs/a.md", "a\n");
    ws.run_once(0);
    run_once_trusting_stat(&ws); // records the files' stat, under the old config
    fs::write(
        ws.path("baton.toml"),
        format!(
            "{PIPELINE}\n[agents.archiver]\non = [\"briefs/*.md\"]\nrun = [\"agents/archiver.sh\"]\nwrites = [\"published\"]\n"
        ),
    )
    .unwrap();
    fs::write(
        ws.path("agents/archiver.sh"),
        "#!/bin/sh\nset -eu\nmkdir -p \"$BATON_OUT/published\"\ncp \"$BATON_INPUT\" \"$BATON_OUT/published/\"\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(ws.path("agents/archiver.sh"))
        .status()
        .unwrap();
    run_once_trusting_stat(&ws);
    assert_eq!(ws.read("published/a.md"), "a\n");
}

#[test]
fn the_journal_is_kept_in_sealed_compressed_segments_that_every_command_reads() {
    let ws = pipeline_with(&format!("{PIPELINE}\n[journal]\nsegment_size = \"2KiB\"\n"));
    let daemon = ws.daemon();
    for i in 0..20 {
        ws.write(&format!("briefs/b{i:02}.md"), &format!("brief {i}\n"));
    }
    wait_for("40 tasks done", Duration::from_secs(60), || {
        ws.finished("done").len() == 40
    });
    let segments = || -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(ws.path(".baton/journal"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("journal.jsonl"))
            .collect();
        names.sort();
        names
    };
    wait_for(
        "the sealed segments but the newest to be compressed",
        Duration::from_secs(20),
        || {
            let names = segments();
            names.len() > 4
                && names[..names.len() - 2].iter().all(|n| n.ends_with(".zst"))
                && !names[names.len() - 2..].iter().any(|n| n.ends_with(".zst"))
        },
    );
    // One stream, in order, with nothing lost or doubled.
    let journal = ws.journal();
    let seqs: Vec<u64> = journal.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());

    // Every reader reads across segments.
    let all = json_lines(&ws.baton(&["log", "--json"]));
    assert_eq!(all.len(), journal.len(), "log reads every segment");
    let last = json_lines(&ws.baton(&["log", "-n", "30", "--json"]));
    assert_eq!(
        last[..],
        journal[journal.len() - 30..],
        "log -n reads back across segments"
    );
    let first_task = ws.records("task.queued")[0]["task"]
        .as_str()
        .unwrap()
        .to_string();
    let of_first = json_lines(&ws.baton(&["log", "--task", &first_task, "--json"]));
    assert!(of_first.len() >= 3, "{of_first:?}");
    let who = stdout(&ws.baton(&["who", "reviews/b00.md"]));
    assert!(who.contains("reviewer"), "{who}");
    let trace = stdout(&ws.baton(&["trace", "reviews/b00.md"]));
    assert!(
        trace.contains("writer") && trace.contains("briefs/b00.md"),
        "{trace}"
    );
    assert_eq!(settled_status(&ws), (40, 0, 0, 0));
    daemon.stop();

    // The store rebuilt from compressed segments holds the same; so does a daemon that
    // starts on them, and goes on appending.
    fs::remove_file(ws.path(".baton/state.db")).unwrap();
    assert_eq!(settled_status(&ws), (40, 0, 0, 0), "rebuilt");
    let out = ws.baton(&["index", "--rebuild"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(settled_status(&ws), (40, 0, 0, 0), "index --rebuild");
    ws.write("briefs/late.md", "late\n");
    ws.run_once(0);
    assert_eq!(settled_status(&ws), (42, 0, 0, 0));
    assert_eq!(ws.read("reviews/late.md"), "ok\n");
    let seqs: Vec<u64> = ws
        .journal()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}
