//! The four examples of `examples/`, run as a user would.

use super::fixtures::*;
use super::harness::*;

#[test]
fn example_router_sends_each_request_to_its_specialist() {
    let ws = example("router");
    drop_all(&ws, "sample-requests");
    ws.run_once(0);
    for (request, specialist) in [
        ("refund.md", "finance"),
        ("contract.md", "legal"),
        ("login.md", "support"),
    ] {
        let answer = ws.read(&format!("answers/{request}"));
        assert!(
            answer.contains(&format!("answered_by = \"{specialist}\"")),
            "{request}: {answer}"
        );
    }
    // Each specialist ran once, routed by `to`; no other agent saw the routing notes.
    let routed: Vec<String> = queued_with_reason(&ws, "to")
        .iter()
        .map(|r| r["agent"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = routed.clone();
    sorted.sort();
    assert_eq!(sorted, ["finance", "legal", "support"]);
    assert_eq!(ws.records("task.queued").len(), 6);
}

#[test]
fn example_manager_worker_assembles_the_parts_in_one_join() {
    let ws = example("manager-worker");
    drop_all(&ws, "sample-briefs");
    ws.run_once(0);
    let report = ws.read("reports/launch.md");
    for topic in [
        "Audience and positioning",
        "Pricing and packaging",
        "Rollout timeline",
    ] {
        assert!(report.contains(&format!("## {topic}")), "{report}");
    }
    assert_eq!(queued_with_reason(&ws, "delegate").len(), 3);
    let joins = queued_with_reason(&ws, "join");
    assert_eq!(joins.len(), 1);
    assert_eq!(joins[0]["agent"], "manager");
    // The briefs point at the parts; no content was copied into them.
    for brief in ws
        .files_in("briefs")
        .iter()
        .filter(|b| b.contains(".worker."))
    {
        let text = ws.read(brief);
        assert!(text.contains("refs = [\"parts/launch-"), "{text}");
        assert!(!text.contains("Pricing"), "{text}");
    }
}

#[test]
fn example_review_loop_revises_until_approved_or_max_depth() {
    let ws = example("review-loop");
    drop_all(&ws, "sample-briefs");
    ws.run_once(0);
    // The essay is approved at the third revision.
    assert!(ws.read("drafts/essay.md").contains("revision = 3"));
    assert!(
        ws.read("reviews/essay.md")
            .contains("verdict = \"approve\"")
    );
    let summaries: Vec<String> = ws
        .finished("done")
        .iter()
        .filter_map(|r| r["result"]["summary"].as_str().map(str::to_string))
        .collect();
    assert!(
        summaries.iter().any(|s| s == "approved at revision 3"),
        "{summaries:?}"
    );
    // The perfectionist's loop is ended by max_depth, and the writer is told so.
    let refused = rejections(&ws);
    assert!(
        refused
            .iter()
            .any(|r| r.starts_with("briefs/perfectionist.editor.")
                && r.contains("over max_depth = 6")),
        "{refused:?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s == "stopped: the review was refused (max_depth)"),
        "{summaries:?}"
    );
    // Every join ran once: one per delegating task.
    let delegating = ws
        .finished("done")
        .iter()
        .filter(|r| r["delegated"].as_array().is_some_and(|d| !d.is_empty()))
        .count();
    assert_eq!(queued_with_reason(&ws, "join").len(), delegating);
}

#[test]
fn example_content_factory_holds_published_until_approved_or_rejected() {
    let ws = example("content-factory");
    drop_all(&ws, "sample-briefs");
    ws.run_once(0);
    assert!(
        ws.files_in("published").is_empty(),
        "nothing published before approval"
    );
    let status = ws.status_json();
    let held = status["held"].as_array().unwrap().clone();
    assert_eq!(held.len(), 2, "{status}");
    let held_for = |path: &str| {
        held.iter()
            .find(|t| t["outputs"][0]["path"] == path)
            .unwrap_or_else(|| panic!("no held task for {path}: {held:?}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let launch = held_for("published/launch.md");
    let pricing = held_for("published/pricing.md");
    let shown = stdout(&ws.baton(&["status"]));
    assert!(
        shown.contains("held for approval (2)") && shown.contains("published/launch.md"),
        "{shown}"
    );

    let out = ws.baton(&["approve", &launch[..8]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        ws.read("published/launch.md")
            .starts_with("# Launching baton 1.0")
    );
    let out = ws.baton(&["reject", &pricing, "--note", "not this quarter"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!ws.path("published/pricing.md").exists());
    // The rejected outputs stay in the staging tree for inspection.
    assert!(
        walk(&ws.path(&format!(".baton/runs/{pricing}")))
            .iter()
            .any(|p| p.ends_with("out/published/pricing.md"))
    );

    let approvals = ws.records("approval");
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals[1]["note"], "not this quarter");
    let who = stdout(&ws.baton(&["who", "published/launch.md"]));
    assert!(who.contains("publisher"), "{who}");
    let status = ws.status_json();
    assert_eq!(status["held"].as_array().unwrap().len(), 0);
    let dead = &status["dead"][0];
    assert_eq!(dead["id"], pricing.as_str());
    assert!(dead["error"].as_str().unwrap().contains("not this quarter"));
    // Neither decision can be taken twice.
    let again = ws.baton(&["approve", &launch]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(stderr(&again).contains("not held for approval"));
    // An approval commit is an ordinary commit: a daemon started now has nothing to do.
    ws.run_once(0);
    assert_eq!(ws.records("task.queued").len(), 12);
}

#[test]
fn example_llm_agents_runs_claude_codex_and_llm_by_their_calling_conventions() {
    let ws = example("llm-agents");
    let stand_ins = ws.path("stand-ins");
    let path = format!("{}:{}", stand_ins.display(), std::env::var("PATH").unwrap());
    let out = ws.baton(&[
        "drop",
        &ws.path("sample-briefs/launch.md").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = ws
        .command(&["run", "--once"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        ws.read("drafts/launch.md")
            .starts_with("# Launch post\n\n(A draft by the claude stand-in")
    );
    assert!(ws.read("reviews/launch.md").contains("verdict: approve"));
    assert_eq!(
        ws.read("summaries/launch.md"),
        "The reviewer says: approve.\n"
    );
    // Each agent's result.toml summary reached the journal.
    let summaries: Vec<String> = ws
        .finished("done")
        .iter()
        .filter_map(|r| r["result"]["summary"].as_str().map(str::to_string))
        .collect();
    assert!(
        summaries.contains(&"drafted launch.md with claude".to_string()),
        "{summaries:?}"
    );
}

#[test]
fn example_mcp_agent_drafts_and_delegates_through_baton_mcp() {
    let ws = example("mcp-agent");
    let path = format!(
        "{}:{}",
        ws.path("stand-ins").display(),
        std::env::var("PATH").unwrap()
    );
    let out = ws.baton(&[
        "drop",
        &ws.path("sample-briefs/otters.md").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = ws
        .command(&["run", "--once"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(ws.read("drafts/otters.md").starts_with(
        "# Why otters hold hands\n\n(A draft by the claude stand-in, written through baton mcp.)"
    ));
    assert!(ws.read("reviews/otters.md").contains("verdict: approve"));
    // The draft is the writer's, committed in its task; the reviewer ran on the brief
    // the writer delegated over MCP, and the writer joined once.
    let draft: Vec<_> = ws
        .records("artifact")
        .into_iter()
        .filter(|r| r["path"] == "drafts/otters.md")
        .collect();
    assert_eq!(draft.len(), 1);
    assert_eq!(draft[0]["by"], "writer");
    let writer_task = draft[0]["task"].as_str().unwrap().to_string();
    let queued = ws.records("task.queued");
    let reviewer: Vec<_> = queued.iter().filter(|q| q["agent"] == "reviewer").collect();
    assert_eq!(reviewer.len(), 1, "{queued:?}");
    assert_eq!(reviewer[0]["parent"], writer_task.as_str());
    assert_eq!(ws.finished("done").len(), 3);
}
