//! `baton versions` and `baton restore` (issue 11).

use super::fixtures::*;
use super::harness::*;

#[test]
fn versions_lists_each_version_and_restore_puts_one_back_as_human() {
    let ws = copier();
    ws.write("one.md", "# one\n");
    ws.write("two.md", "# two\n");
    let drop = |name: &str| {
        let file = ws.path(name).display().to_string();
        // Each named the same in briefs/: copy to a file called plan.md first.
        std::fs::copy(&file, ws.path("plan.md")).unwrap();
        let plan = ws.path("plan.md").display().to_string();
        ws.baton(&["drop", &plan])
    };
    assert_eq!(drop("one.md").status.code(), Some(0));
    let second = drop("two.md");
    assert!(
        stdout(&second).contains("it replaced another version of briefs/plan.md"),
        "{}",
        text(&second)
    );
    let out = ws.baton(&["versions", "briefs/plan.md", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let versions = doc["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{doc:#}");
    assert_eq!(versions[0]["kept"], "object");
    assert_eq!(versions[1]["kept"], "current");
    assert_eq!(versions[0]["by"], "human");
    let text_out = stdout(&ws.baton(&["versions", "briefs/plan.md"]));
    assert!(
        text_out.contains("current") && text_out.contains("kept"),
        "{text_out}"
    );

    let out = ws.baton(&["restore", "briefs/plan.md", "--version", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(ws.read("briefs/plan.md"), "# one\n");
    let last = ws.records("artifact").last().cloned().unwrap();
    assert_eq!(
        (last["path"].as_str(), last["by"].as_str()),
        (Some("briefs/plan.md"), Some("human"))
    );
    // Restoring by hash prefix; the version there already is a no-op.
    let hash = versions[1]["hash"].as_str().unwrap()[..10].to_string();
    let out = ws.baton(&["restore", "briefs/plan.md", "--version", &hash]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(ws.read("briefs/plan.md"), "# two\n");
    let out = ws.baton(&["restore", "briefs/plan.md", "--version", &hash]);
    assert!(
        stdout(&out).contains("holds version 4 already"),
        "{}",
        text(&out)
    );
    let out = ws.baton(&["restore", "briefs/plan.md", "--version", "9"]);
    fails_with(&out, 1, "has no version 9");
}
