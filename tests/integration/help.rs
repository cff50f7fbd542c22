//! The conventions a Rust CLI user expects (issue 11): help with examples on every
//! command, completions, man pages, and one exit-code rule.

use std::fs;
use std::process::Command;

use super::fixtures::*;
use super::harness::*;

const COMMANDS: &[&str] = &[
    "init",
    "demo",
    "run",
    "stop",
    "drop",
    "status",
    "log",
    "who",
    "versions",
    "restore",
    "logs",
    "retry",
    "cancel",
    "delegate",
    "approve",
    "reject",
    "trace",
    "search",
    "write",
    "read",
    "lock",
    "index",
    "completions",
    "man",
];

#[test]
fn every_commands_help_ends_with_examples() {
    for command in COMMANDS {
        let out = Command::new(BATON)
            .args([command, "--help"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{command}: {}", text(&out));
        let help = stdout(&out);
        let examples = help
            .rfind("Examples:")
            .unwrap_or_else(|| panic!("{command}: {help}"));
        assert!(
            help[examples..].contains(&format!("baton {command}"))
                || help[examples..].contains("baton "),
            "{command}: {help}"
        );
    }
}

#[test]
fn completions_and_man_pages_are_generated() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(BATON)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        assert!(stdout(&out).contains("baton"), "{shell}");
    }
    let bash = stdout(
        &Command::new(BATON)
            .args(["completions", "bash"])
            .output()
            .unwrap(),
    );
    assert!(
        bash.contains("restore") && bash.contains("--wait"),
        "{bash}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BATON)
        .args(["man", &dir.path().display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let page = fs::read_to_string(dir.path().join("baton-drop.1")).unwrap();
    assert!(
        page.contains(".TH baton-drop") && page.contains("wait"),
        "{page}"
    );
    assert!(dir.path().join("baton.1").is_file());
}

#[test]
fn one_exit_code_rule_not_found_is_1_usage_is_2() {
    let ws = copier();
    ws.write("briefs/a.md", "# A\n");
    ws.run_once(0);
    // Not found: 1, whatever the command.
    for args in [
        &["logs", "t-nosuchtask"][..],
        &["trace", "t-nosuchtask"],
        &["who", "drafts/none.md"],
        &["retry", "t-nosuchtask"],
        &["cancel", "t-nosuchtask"],
        &["versions", "drafts/none.md"],
    ] {
        let out = ws.baton(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
    }
    // Usage: 2, including no workspace and a prefix naming several tasks.
    ws.write("briefs/b.md", "# B\n");
    ws.run_once(0);
    let out = ws.baton(&["logs", "t-"]);
    fails_with(&out, 2, "give more of the id");
    let nowhere = tempfile::tempdir().unwrap();
    let out = Command::new(BATON)
        .arg("status")
        .current_dir(nowhere.path())
        .output()
        .unwrap();
    fails_with(&out, 2, "no baton.toml in");
}
