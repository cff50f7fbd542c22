//! The CLI: init, workspace discovery, drop, log, demo.

use std::fs;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::fixtures::*;
use super::harness::*;

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
    // No workspace here is a usage error (issue 11: one exit-code rule).
    assert_eq!(lost.status.code(), Some(2));
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
    // The closing hints run as printed.
    let hints: Vec<&str> = printed
        .lines()
        .skip_while(|l| !l.contains("Explore it:"))
        .skip(1)
        .map(str::trim)
        .collect();
    assert_eq!(hints.len(), 4, "{printed}");
    for hint in hints {
        let words: Vec<&str> = hint.split(' ').collect();
        assert_eq!(words[0], "baton", "{hint}");
        let out = Command::new(BATON).args(&words[1..]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{hint}: {}", text(&out));
    }
}

#[test]
fn drop_refuses_what_the_daemon_would_reject_and_publishes_nothing() {
    let ws = copier();
    let cases = [
        (
            "bad.md",
            "+++\ntitle = \"ok\"\nto = legal\n+++\nBody\n",
            "front matter, line 3, column 6",
        ),
        (
            "nobody.md",
            "+++\nto = \"nobody\"\n+++\n",
            "`to = \"nobody\"` names no agent: known agents are copier",
        ),
        (
            "refs.md",
            "+++\nrefs = [\"data/q3.csv\"]\n+++\n",
            "refs: `data/q3.csv` (data/q3.csv) does not exist",
        ),
    ];
    for (name, content, says) in cases {
        ws.write(name, content);
        let file = ws.path(name).display().to_string();
        let out = ws.baton(&["drop", &file]);
        fails_with(&out, 2, says);
        assert!(
            stderr(&out).contains("nothing was dropped"),
            "{}",
            text(&out)
        );
        assert!(
            !ws.path(&format!("briefs/{name}")).exists(),
            "{name} was published"
        );
    }
    assert!(ws.journal().is_empty(), "{:?}", ws.journal());
    // What starts no agent is published, with a warning that says so.
    ws.write("note.md", "# just a note\n");
    let file = ws.path("note.md").display().to_string();
    let out = ws.baton(&["drop", &file, "--stage", "drafts"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("no agent's `on` matches drafts/note.md"),
        "{}",
        text(&out)
    );
    assert_eq!(ws.read("drafts/note.md"), "# just a note\n");
}

#[test]
fn the_daemon_says_on_stderr_what_it_rejects_as_it_happens() {
    let ws = copier();
    let daemon = ws.daemon();
    ws.publish("briefs/nobody.md", "+++\nto = \"nobody\"\n+++\n");
    wait_for(
        "the rejection in the daemon's log",
        Duration::from_secs(10),
        || {
            let log = daemon.log(&ws);
            log.contains("rejected")
                && log.contains("briefs/nobody.md")
                && log.contains("names no agent")
        },
    );
}

#[test]
fn status_shows_only_the_rejections_that_still_stand() {
    let ws = copier();
    ws.publish("briefs/a.md", "+++\nto = \"nobody\"\n+++\n");
    ws.publish("briefs/b.md", "+++\nto = legal\n+++\n");
    ws.run_once(0);
    let rejected = |ws: &TestWorkspace| -> Vec<String> {
        ws.status_json()["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(rejected(&ws), ["briefs/a.md", "briefs/b.md"]);
    // a.md is fixed; b.md is removed: neither is rejected any more.
    ws.publish("briefs/a.md", "# fixed\n");
    fs::remove_file(ws.path("briefs/b.md")).unwrap();
    ws.run_once(0);
    assert_eq!(rejected(&ws), Vec::<String>::new());
    assert!(!stdout(&ws.baton(&["status"])).contains("rejected"));
}

#[test]
fn status_says_what_is_true_now_running_for_how_long_or_interrupted() {
    let ws =
        TestWorkspace::new("[agents.slow]\non = [\"briefs/*.md\"]\nrun = [\"agents/slow.sh\"]\n")
            .agent("slow", "sleep 600");
    let daemon = ws.daemon();
    ws.publish("briefs/a.md", "x\n");
    wait_for("the agent to start", Duration::from_secs(10), || {
        !ws.records("task.started").is_empty()
    });
    let doc = ws.status_json();
    let running = &doc["running"][0];
    assert!(running["elapsed_ms"].as_u64().is_some(), "{doc:#}");
    assert!(
        running.get("start_time").is_none(),
        "no clock ticks: {doc:#}"
    );
    let started = running["started_ts"].as_str().unwrap();
    assert!(started.ends_with('Z') && started.contains('T'), "{started}");
    assert!(stdout(&ws.baton(&["status"])).contains("attempt 1, for "));
    // The daemon dies: its task is not running any more, whatever the journal says.
    daemon.kill9();
    let doc = ws.status_json();
    assert_eq!(doc["running"].as_array().unwrap().len(), 0, "{doc:#}");
    assert_eq!(doc["interrupted"][0]["agent"], "slow", "{doc:#}");
    let text = stdout(&ws.baton(&["status"]));
    assert!(
        text.contains("interrupted (they run again at the next start) (1)"),
        "{text}"
    );
    // Leave nothing behind: the killed daemon's agent and its group.
    let pid = ws.records("task.started")[0]["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) of a process group; no memory involved.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

#[test]
fn drop_wait_returns_once_the_work_it_set_off_is_done() {
    let ws = copier();
    ws.write("plan.md", "# Launch plan\n");
    let plan = ws.path("plan.md").display().to_string();
    let out = ws.baton(&["drop", "--wait", &plan]);
    fails_with(&out, 1, "no daemon runs on");
    let _daemon = ws.daemon();
    ws.write("plan.md", "# Launch plan, second cut\n");
    let out = ws.baton(&["drop", "--wait", &plan]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("copier       done → drafts/plan.md"),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains("it replaced another version of briefs/plan.md"),
        "{}",
        text(&out)
    );
    // Right after it returns, the output is there: no race with the agent.
    assert_eq!(ws.read("drafts/plan.md"), "# Launch plan, second cut\n");
}

#[test]
fn drop_wait_exits_1_when_a_task_it_set_off_ends_dead() {
    let ws = TestWorkspace::new(
        "[agents.bad]\non = [\"briefs/*.md\"]\nrun = [\"agents/bad.sh\"]\nretries = 0\n",
    )
    .agent("bad", "echo nope >&2; exit 3");
    let _daemon = ws.daemon();
    ws.write("x.md", "x\n");
    let out = ws.baton(&["drop", "--wait", &ws.path("x.md").display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("bad          dead: exited with status 3"),
        "{}",
        text(&out)
    );
}

#[test]
fn baton_run_on_a_terminal_says_what_it_watches_and_how_to_stop() {
    let ws = copier();
    let cmd = format!("{BATON} -w {} run --once", ws.root.display());
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let shown = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        shown.contains("baton: watching briefs/, drafts/, reviews/, published/ in"),
        "{shown}"
    );
    assert!(
        shown.contains("copier         briefs/**/*.md → drafts"),
        "{shown}"
    );
    assert!(shown.contains("Ctrl-C stops it sooner"), "{shown}");
    // Not on a pipe: logs and scripts get no banner.
    assert!(!stderr(&ws.run_once(0)).contains("watching"));
}

#[test]
fn the_systemd_unit_starts_and_stops_the_daemon() {
    let unit = fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd/baton.service"),
    )
    .unwrap();
    let value = |key: &str| -> String {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in the unit"))
            .to_string()
    };
    assert_eq!(value("KillMode"), "mixed");
    let home = tempfile::tempdir().unwrap();
    let expand = |s: String| s.replace("%h", &home.path().display().to_string());
    fs::create_dir_all(home.path().join(".cargo/bin")).unwrap();
    std::os::unix::fs::symlink(BATON, home.path().join(".cargo/bin/baton")).unwrap();
    let out = Command::new(BATON)
        .args(["init", &home.path().join("my-team").display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = expand(value("WorkingDirectory"));
    let run = |line: String| {
        let mut words = line.split(' ');
        let mut c = Command::new(words.next().unwrap());
        c.args(words).current_dir(&dir);
        c
    };
    let log = home.path().join("daemon.log");
    let child = run(expand(value("ExecStart")))
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::create(home.path().join("daemon.err")).unwrap())
        .spawn()
        .unwrap();
    let mut daemon = Daemon::of(child);
    wait_for("the daemon to start", Duration::from_secs(10), || {
        fs::read_to_string(home.path().join("daemon.err"))
            .is_ok_and(|l| l.contains("daemon started"))
    });
    let stop = run(expand(value("ExecStop"))).output().unwrap();
    assert_eq!(stop.status.code(), Some(0), "{}", text(&stop));
    assert_eq!(
        wait_exit(&mut daemon.child, Duration::from_secs(10)),
        Some(0)
    );
}
