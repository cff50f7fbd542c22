//! The page in a real browser: headless Chromium from the distribution, driven by
//! `tests/ui/drive.mjs` (playwright-core). The tests run when `BATON_TEST_BROWSER`
//! names a node_modules folder holding playwright-core (`.ci/run` installs it, and
//! Debian's chromium); elsewhere they say "skipped". Screenshots of each view go to
//! `BATON_SCREENSHOTS` (default `target/screenshots`); the README shows those in
//! `docs/screenshots/`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::super::fixtures::*;
use super::*;

/// Runs one scenario of the driver against `ui`; its JSON line, or `None` if the
/// browser is not set up here.
fn drive(ws: &TestWorkspace, ui: &Ui, scenario: &str, args: &[&str]) -> Option<Value> {
    let Some(modules) = std::env::var_os("BATON_TEST_BROWSER") else {
        eprintln!("skipped: BATON_TEST_BROWSER is not set (.ci/run sets it)");
        return None;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shots = std::env::var_os("BATON_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/screenshots"));
    let out = Command::new("node")
        .arg(root.join("tests/ui/drive.mjs"))
        .arg(scenario)
        .arg(ui.url())
        .arg(&shots)
        .args(args)
        .env("BATON_TEST_BROWSER", modules)
        .env("BATON_BIN", env!("CARGO_BIN_EXE_baton"))
        .env("BATON_WS", &ws.root)
        .output()
        .expect("running node");
    assert!(
        out.status.success(),
        "{scenario} in the browser failed: {}",
        text(&out)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    Some(serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}")))
}

#[test]
fn a_dropped_brief_appears_in_the_feed_within_a_second_without_reloading() {
    let ws = copier();
    let _daemon = ws.daemon();
    ws.publish("briefs/earlier.md", "# Earlier\n");
    wait_for("the earlier brief's task", Duration::from_secs(10), || {
        !ws.finished("done").is_empty()
    });
    let ui = Ui::start(&ws);
    let Some(out) = drive(&ws, &ui, "feed", &["launch-plan.md"]) else {
        return;
    };
    let ms = out["appeared_ms"].as_u64().unwrap();
    assert!(ms <= 1000, "the dropped brief appeared after {ms} ms");
}

#[test]
fn approving_from_the_page_commits_the_held_output() {
    let ws = team();
    ws.publish("briefs/a.md", "first\n");
    ws.run_once(0);
    let task = task_of(&ws, "briefs/a.md");
    assert!(!ws.path("published/a.md").exists(), "held");
    let ui = Ui::start(&ws);
    if drive(&ws, &ui, "approve", &[&task]).is_none() {
        return;
    }
    assert_eq!(ws.read("published/a.md"), "# Draft of a.md\n\nfirst\n");
    let approval = &ws.records("approval")[0];
    assert_eq!(approval["by"], "human");
    assert_eq!(approval["decision"], "approved");
    assert_eq!(approval["note"], "Looks right.");
    assert_eq!(approval["task"], task.as_str());
}

#[test]
fn the_tree_shows_a_manager_and_its_three_workers() {
    let ws = TestWorkspace::marked(&manager_config("", ""))
        .agent("manager", &manager_script(3, "worker"))
        .agent("worker", WORKER_SCRIPT);
    ws.publish("briefs/job.md", "# Job\n");
    ws.run_once(0);
    let manager = task_of(&ws, "briefs/job.md");
    let ui = Ui::start(&ws);
    let Some(out) = drive(&ws, &ui, "tree", &[&manager]) else {
        return;
    };
    let nodes = out["nodes"].as_array().unwrap();
    let root = &nodes[0];
    assert_eq!(
        (&root["agent"], &root["task"]),
        (&Value::from("manager"), &Value::from(manager.as_str()))
    );
    let workers: Vec<&Value> = nodes.iter().filter(|n| n["agent"] == "worker").collect();
    assert_eq!(workers.len(), 3, "{nodes:?}");
    let root_depth = root["depth"].as_u64().unwrap();
    assert!(
        workers
            .iter()
            .all(|w| w["depth"].as_u64().unwrap() == root_depth + 1),
        "each worker hangs under the manager: {nodes:?}"
    );
}

#[test]
fn a_search_in_the_page_finds_an_artifact_and_opens_it() {
    let ws = team();
    ws.publish("briefs/zeppelin.md", "A brief about the zeppelin fleet.\n");
    ws.run_once(0);
    let task = task_of(&ws, "briefs/zeppelin.md");
    assert_eq!(ws.baton(&["approve", &task]).status.code(), Some(0));
    // A second version, for the artifact view's diff.
    let newer = ws.root.with_file_name("zeppelin.md");
    std::fs::write(
        &newer,
        "A brief about the zeppelin fleet.\nAnd its hangars.\n",
    )
    .unwrap();
    assert_eq!(
        ws.baton(&["drop", newer.to_str().unwrap()]).status.code(),
        Some(0)
    );
    let ui = Ui::start(&ws);
    let Some(out) = drive(&ws, &ui, "search", &["zeppelin", "briefs/zeppelin.md"]) else {
        return;
    };
    assert!(
        out["marked"].as_u64().unwrap() >= 1,
        "the match is marked: {out}"
    );
    assert_eq!(out["versions"], 2);
}
