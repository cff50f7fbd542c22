//! DESIGN §8: search, and the index kept current with or without a daemon.

use std::fs;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::fixtures::*;
use super::harness::*;

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
    let current = ws.read(".baton/index/schema-version");
    assert_ne!(current.trim(), "0");
    fs::write(ws.path(".baton/index/schema-version"), "0\n").unwrap();
    let (code, hits) = search(&ws, &["launch"]);
    assert_eq!(
        (code, paths(&hits)),
        (Some(0), vec!["drafts/a.md".to_string()])
    );
    assert_eq!(ws.read(".baton/index/schema-version"), current);
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
