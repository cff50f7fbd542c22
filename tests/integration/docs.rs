//! What the README and the workspace template tell a new user to do works when pasted
//! literally (issue 11).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::harness::*;

/// The `sh` code blocks of the README's section `title`, in order.
fn readme_blocks(title: &str) -> Vec<String> {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find(title)
        .unwrap_or_else(|| panic!("no {title} in README.md"));
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

/// A shell line without its trailing comment.
fn command_of(line: &str) -> String {
    match line.find("  #") {
        Some(at) => line[..at].trim().to_string(),
        None => line.trim().to_string(),
    }
}

/// `PATH` with the baton under test first, as `cargo install` would leave it.
fn path_with_baton() -> String {
    let dir = PathBuf::from(BATON).parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn sh(dir: &Path, line: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("PATH", path_with_baton())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn the_five_minute_tour_works_when_pasted_literally() {
    let blocks = readme_blocks("## Five-minute tour");
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let home = tempfile::tempdir().unwrap();
    // The first terminal: installing is left out (the binary under test is on PATH);
    // the daemon runs in the background.
    let mut first: Vec<String> = blocks[0].lines().map(command_of).collect();
    assert_eq!(first[0], "cargo install --path .");
    assert_eq!(first.last().unwrap(), "baton run");
    first.remove(0);
    first.pop();
    let setup = first.join("\n");
    let out = sh(home.path(), &setup);
    assert_eq!(out.status.code(), Some(0), "{setup}: {}", text(&out));
    let team = home.path().join("my-team");
    let log = fs::File::create(home.path().join("daemon.log")).unwrap();
    let child = Command::new("sh")
        .arg("-c")
        .arg("exec baton run")
        .current_dir(&team)
        .env("PATH", path_with_baton())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let _daemon = Daemon::of(child);
    wait_for("the daemon to start", Duration::from_secs(10), || {
        fs::read_to_string(home.path().join("daemon.log"))
            .is_ok_and(|l| l.contains("daemon started"))
    });
    // The second terminal, line by line.
    for line in blocks[1].lines().map(command_of).filter(|l| !l.is_empty()) {
        let out = sh(&team, &line);
        assert_eq!(out.status.code(), Some(0), "{line}: {}", text(&out));
        if line == "cat drafts/plan.md" {
            assert!(
                stdout(&out).starts_with("# Draft: Launch plan"),
                "{}",
                text(&out)
            );
        }
    }
}

#[test]
fn every_example_in_the_template_works_when_uncommented() {
    let home = tempfile::tempdir().unwrap();
    let out = sh(home.path(), "baton init team");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let team = home.path().join("team");
    let config = fs::read_to_string(team.join("baton.toml")).unwrap();
    let toml_line = |l: &str| {
        let rest = l.trim_start_matches("# ");
        rest.starts_with('[')
            || rest
                .split_once(" = ")
                .is_some_and(|(k, _)| !k.contains(' '))
    };
    let uncommented: String = config
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if toml_line(l) => rest.to_string(),
            _ => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    assert!(
        uncommented.contains("\n[agents.reviewer]\n"),
        "{uncommented}"
    );
    fs::write(team.join("baton.toml"), &uncommented).unwrap();
    // A stand-in for the `llm` CLI the template names: a system prompt, stdin in,
    // the answer on stdout.
    let bin = home.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(
        bin.join("llm"),
        "#!/bin/sh\n[ \"$1\" = -s ] || exit 2\necho \"review ($2)\"\nsed 's/^/> /'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(bin.join("llm"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(team.join("plan.md"), "# Plan\n\nShip it.\n").unwrap();
    let path = format!("{}:{}", bin.display(), path_with_baton());
    let run = |line: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(&team)
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let out = run("baton drop plan.md && baton run --once");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let review = fs::read_to_string(team.join("reviews/plan.md")).unwrap();
    assert!(review.starts_with("review (Review this draft"), "{review}");
    assert!(review.contains("> # Draft: Plan"), "{review}");
}
