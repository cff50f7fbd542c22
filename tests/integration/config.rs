//! DESIGN §2: config errors name the file, line and column and what was expected; exit 2.

use std::time::Duration;

use super::fixtures::*;
use super::harness::*;

fn config_error(config: &str) -> String {
    let ws = TestWorkspace::new(config).agent("ok", "true");
    let out = ws.baton(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    stderr(&out).lines().next().unwrap_or_default().to_string()
}

#[test]
fn config_error_unknown_key() {
    assert_eq!(
        config_error("[agents.a]\nrun = [\"agents/ok.sh\"]\nconcurency = 2\n"),
        "baton: baton.toml:3:1: unknown field `concurency`, expected one of `on`, `run`, `writes`, `concurrency`, `timeout`, `retries`, `backoff`, `delegates_to`, `max_log_bytes`, `max_output_bytes`, `max_output_files`, `sandbox`, `sandbox_writes`, `description`, `fatal_exits`, `expects`, `checks`, `rate`, `fallback`"
    );
    assert_eq!(
        config_error("[workspace]\nstage = [\"a\"]\n"),
        "baton: baton.toml:2:1: unknown field `stage`, expected one of `stages`, `max_depth`, `settle_ms`, `max_children`, `default_deadline`, `default_budget`"
    );
}

#[test]
fn config_error_bad_duration() {
    assert_eq!(
        config_error("[agents.a]\nrun = [\"agents/ok.sh\"]\nbackoff = \"2 parsecs\"\n"),
        "baton: baton.toml:3:11: agent `a`: bad duration `2 parsecs` for `backoff`: expected a number and a unit, like \"30s\", \"10m\" or \"1h\""
    );
}

#[test]
fn config_error_glob_outside_a_stage() {
    assert_eq!(
        config_error("[agents.a]\non = [\"**/*.md\"]\nrun = [\"agents/ok.sh\"]\n"),
        "baton: baton.toml:2:7: agent `a`: glob `**/*.md` does not start in a stage: expected `STAGE/…` with STAGE one of briefs, drafts, reviews, published"
    );
}

#[test]
fn config_error_writes_names_a_missing_stage() {
    assert_eq!(
        config_error(
            "[workspace]\nstages = [\"in\", \"out\"]\n[agents.a]\nrun = [\"agents/ok.sh\"]\nwrites = [\"outbox\"]\n"
        ),
        "baton: baton.toml:5:11: agent `a`: `writes` names `outbox`, which is not a stage: expected one of in, out"
    );
}

#[test]
fn config_error_missing_program() {
    let ws = TestWorkspace::new("[agents.a]\nrun = [\"agents/missing.sh\"]\n");
    let out = ws.baton(&["run"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "baton: baton.toml:2:7: agent `a`: program `agents/missing.sh` does not exist (looked for {})",
            ws.path("agents/missing.sh").display()
        )),
        "{err}"
    );
    // The caret display points at the value.
    assert!(
        err.contains("2 | run = [\"agents/missing.sh\"]\n  |       ^"),
        "{err}"
    );
}

#[test]
fn config_error_stops_every_command_that_needs_the_config() {
    let ws = TestWorkspace::new("[agents.a]\nrun = [\"agents/ok.sh\"]\ntimeout = 5\n");
    for args in [&["status"][..], &["run", "--once"]] {
        let out = ws.baton(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).starts_with(
                "baton: baton.toml:3:11: invalid type: integer `5`, expected a string"
            ),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn one_broken_agent_blocks_only_baton_run() {
    let ws = TestWorkspace::new(
        "[agents.good]\non = [\"briefs/*.md\"]\nrun = [\"agents/good.sh\"]\n\
         [agents.broken]\nrun = [\"agents/missing.sh\"]\n",
    )
    .agent("good", "exit 0");
    ws.write("note.md", "# a note\n");
    let note = ws.path("note.md").display().to_string();
    let warning = "baton: warning: baton.toml:5:7: agent `broken`: program `agents/missing.sh` does not exist";
    for args in [
        &["status"][..],
        &["drop", &note],
        &["index"],
        &["search", "note"],
    ] {
        let out = ws.baton(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(stderr(&out).contains(warning), "{args:?}: {}", text(&out));
        assert!(stderr(&out).contains("`baton run` refuses to start until it is fixed"));
    }
    let out = ws.baton(&["run", "--once"]);
    fails_with(
        &out,
        2,
        "baton: baton.toml:5:7: agent `broken`: program `agents/missing.sh` does not exist",
    );
}

#[test]
fn an_edited_config_is_applied_while_the_daemon_runs_and_a_broken_one_is_not() {
    let ws = copier();
    let daemon = ws.daemon();
    // A valid edit, saved in place: a new agent, on what the copier writes.
    let edited = format!(
        "{COPIER}\n[agents.reviewer]\non = [\"drafts/*.md\"]\nrun = [\"agents/reviewer.sh\"]\nwrites = [\"reviews\"]\n"
    );
    let ws = ws.agent(
        "reviewer",
        "mkdir -p \"$BATON_OUT/reviews\"; echo reviewed > \"$BATON_OUT/reviews/$(basename \"$BATON_INPUT\")\"",
    );
    std::fs::write(ws.path("baton.toml"), &edited).unwrap();
    wait_for(
        "the daemon to apply the edit",
        Duration::from_secs(10),
        || ws.records("config").len() == 2,
    );
    ws.publish("briefs/a.md", "# A\n");
    wait_for("the new agent to run", Duration::from_secs(10), || {
        ws.path("reviews/a.md").exists()
    });
    let status = ws.status_json();
    assert_eq!(
        status["daemon"]["config"]["matches_file"], true,
        "{status:#}"
    );
    // A broken edit, saved by rename: reported with its place, and not applied.
    ws.write(
        "baton.toml.new",
        &edited.replace("retries = 0", "retries = 0\ntimeout = \"soon\""),
    );
    std::fs::rename(ws.path("baton.toml.new"), ws.path("baton.toml")).unwrap();
    wait_for(
        "the daemon to report the broken edit",
        Duration::from_secs(10),
        || {
            let log = daemon.log(&ws);
            log.contains("baton.toml:8:11: agent `copier`: bad duration `soon`")
                && log.contains("keeps running the config it had")
        },
    );
    ws.publish("briefs/b.md", "# B\n");
    wait_for(
        "the old config to go on working",
        Duration::from_secs(10),
        || ws.path("reviews/b.md").exists(),
    );
    assert_eq!(ws.records("config").len(), 2);
    let status = stdout(&ws.baton(&["status"]));
    assert!(status.contains("the file differs now"), "{status}");
}
