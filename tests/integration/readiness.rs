//! DESIGN §4.1–4.2: level-triggered reconciliation, and ready means complete.

use std::fs;
use std::process::Command;
use std::time::Duration;

use super::fixtures::*;
use super::harness::*;

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
