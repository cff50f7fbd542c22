//! Who the tools act as: a person, a configured agent (`--agent`), the agent of the task
//! that started the server; what `--read-only` leaves; delegation the daemon runs.

use super::*;

#[test]
fn mcp_read_only_registers_no_writing_tool() {
    let ws = workspace();
    runtime().block_on(async {
        let s = connect(&ws, Era::Legacy, &["--read-only"], &[]).await;
        let mut names: Vec<String> = s
            .client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "list_agents",
                "list_files",
                "read_file",
                "search_files",
                "task_status",
                "trace",
                "who_wrote"
            ]
        );
        let said = s
            .refused(
                "write_file",
                json!({"path": "drafts/a.md", "content": "x"}),
                "invalid_arguments",
            )
            .await;
        assert!(said.contains("--read-only"), "{said}");
        s.close().await;
    });
    assert!(!ws.path("drafts/a.md").exists());
}

#[test]
fn mcp_as_an_agent_writes_only_its_stages_attributed_to_it() {
    let ws = workspace();
    runtime().block_on(async {
        let s = connect(&ws, Era::Modern, &["--agent", "writer"], &[]).await;
        let said = s
            .refused(
                "write_file",
                json!({"path": "reviews/r.md", "content": "x"}),
                "outside_scope",
            )
            .await;
        assert!(said.contains("writes"), "{said}");
        s.ok(
            "write_file",
            json!({"path": "drafts/by-writer.md", "content": "mine\n"}),
        )
        .await;
        let who = s
            .ok("who_wrote", json!({"path": "drafts/by-writer.md"}))
            .await;
        assert_eq!(who["versions"][0]["by"], "writer", "{who}");
        // delegates_to = [] for the reviewer; the writer has no list and may delegate.
        s.close().await;
        let s = connect(&ws, Era::Legacy, &["--agent", "reviewer"], &[]).await;
        s.refused(
            "delegate",
            json!({"to": "writer", "path": "drafts/by-writer.md"}),
            "delegation_refused",
        )
        .await;
        s.close().await;
    });
    let records = ws.records("artifact");
    let by_writer: Vec<&Value> = records
        .iter()
        .filter(|r| r["path"] == "drafts/by-writer.md")
        .collect();
    assert_eq!(by_writer.len(), 1);
    assert_eq!(by_writer[0]["by"], "writer");
    assert!(!ws.path("reviews/r.md").exists());

    // An unknown agent is refused before anything is served, naming the agents.
    let out = ws.baton(&["mcp", "--agent", "nobody"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = stderr(&out);
    assert!(
        said.contains("nobody") && said.contains("reviewer, writer"),
        "{said}"
    );
    assert!(
        out.stdout.is_empty(),
        "stdout carries only protocol: {:?}",
        stdout(&out)
    );
}

#[test]
fn mcp_delegation_is_run_by_the_daemon_and_a_key_makes_it_once() {
    let ws = workspace();
    ws.publish("drafts/spec.md", "the spec\n");
    let _daemon = ws.daemon();
    let brief = runtime().block_on(async {
        let s = connect(&ws, Era::Modern, &[], &[]).await;
        s.refused("delegate", json!({"to": "ghost", "path": "drafts/spec.md"}), "unknown_agent").await;
        s.refused("delegate", json!({"to": "reviewer", "path": "drafts/none.md"}), "not_found").await;
        s.refused("delegate", json!({"to": "reviewer", "path": "drafts/spec.md", "refs": ["drafts/none.md"]}), "not_found").await;
        let args = json!({"to": "reviewer", "path": "drafts/spec.md", "note": "Check it.", "idempotency_key": "k1"});
        let first = s.ok("delegate", args.clone()).await;
        assert_eq!(first["status"], "published");
        assert_eq!(first["replayed"], false);
        let again = s.ok("delegate", args).await;
        assert_eq!(again["brief"], first["brief"]);
        assert_eq!(again["replayed"], true);
        let other = json!({"to": "reviewer", "path": "drafts/spec.md", "note": "Something else.", "idempotency_key": "k1"});
        s.refused("delegate", other, "idempotency_conflict").await;
        let brief = first["brief"].as_str().unwrap().to_string();
        // The daemon runs the reviewer on the brief; task_status and trace see it.
        wait_for("the reviewer's output", Duration::from_secs(20), || ws.path("reviews/r.md").exists());
        let trace = s.ok("trace", json!({"path_or_task": brief})).await;
        let tree = &trace["trees"][0];
        assert_eq!(tree["agent"], "reviewer", "{trace}");
        let task = tree["task"].as_str().unwrap().to_string();
        wait_for("the task to be done", Duration::from_secs(10), || {
            ws.finished("done").iter().any(|f| f["task"] == task.as_str())
        });
        let status = s.ok("task_status", json!({"task": &task[..8]})).await;
        assert_eq!(status["task"]["status"], "done", "{status}");
        assert_eq!(status["task"]["agent"], "reviewer");
        s.close().await;
        brief
    });
    let queued = ws.records("task.queued");
    let for_brief: Vec<&Value> = queued
        .iter()
        .filter(|q| q["input"] == brief.as_str())
        .collect();
    assert_eq!(for_brief.len(), 1, "one brief, one task: {queued:?}");
    let briefs: Vec<String> = ws.files_in("briefs");
    assert_eq!(briefs.len(), 1, "{briefs:?}");
}

/// An agent that talks MCP to `baton mcp` by hand (bash coproc), inside the sandbox:
/// writes `drafts/via-mcp.md` through `write_file`, reads it back, asks for its own task's
/// status and searches; notes whether the write is visible yet, and exits with the code
/// in `$MARKS/exit-with`.
const MCP_AGENT: &str = r#"#!/bin/bash
set -eu
coproc MCP { "$BATON_BIN" mcp 2>>"$MARKS/mcp.err"; }
send() { printf '%s\n' "$1" >&"${MCP[1]}"; }
recv() { IFS= read -r -t 20 line <&"${MCP[0]}"; printf '%s\n' "$line" >> "$MARKS/mcp.out"; }
send '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
recv
send '{"jsonrpc":"2.0","method":"notifications/initialized"}'
send '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"drafts/via-mcp.md","content":"written over MCP\n"}}}'
recv
send '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"drafts/via-mcp.md"}}}'
recv
send '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"task_status","arguments":{"task":"'"$BATON_TASK"'"}}}'
recv
send '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"search_files","arguments":{"query":"*"}}}'
recv
if [ -e "$BATON_WORKSPACE/drafts/via-mcp.md" ]; then echo visible > "$MARKS/early"; else echo absent > "$MARKS/early"; fi
exec {MCP[1]}>&-
wait
exit "$(cat "$MARKS/exit-with")"
"#;

#[test]
fn mcp_write_inside_a_task_appears_only_after_the_task_succeeds() {
    for exit_with in [1, 0] {
        let ws = TestWorkspace::marked(CONFIG)
            .raw_agent("writer", MCP_AGENT.as_bytes(), 0o755)
            .agent("reviewer", "true");
        fs::write(ws.marks.join("exit-with"), exit_with.to_string()).unwrap();
        ws.publish("briefs/job.md", "# Job\n");
        ws.run_once(exit_with); // 1: a task died
        let out = fs::read_to_string(ws.marks.join("mcp.out")).unwrap_or_default();
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            5,
            "{out}\n{}",
            fs::read_to_string(ws.marks.join("mcp.err")).unwrap_or_default()
        );
        let written = &lines[1]["result"]["structuredContent"];
        assert_eq!(written["status"], "staged", "{out}");
        // The task reads its own staged version back.
        let read = &lines[2]["result"]["structuredContent"];
        assert_eq!(read["staged"], true, "{out}");
        assert_eq!(read["content"], "written over MCP\n");
        // The journal's state and the search index are read inside the sandbox too.
        let status = &lines[3]["result"];
        assert_eq!(status["isError"], false, "{out}");
        assert_eq!(
            status["structuredContent"]["task"]["status"], "running",
            "{out}"
        );
        assert_eq!(lines[4]["result"]["isError"], false, "{out}");
        assert_eq!(
            fs::read_to_string(ws.marks.join("early")).unwrap().trim(),
            "absent"
        );
        let artifacts = ws.records("artifact");
        let committed: Vec<&Value> = artifacts
            .iter()
            .filter(|r| r["path"] == "drafts/via-mcp.md")
            .collect();
        if exit_with == 0 {
            assert_eq!(ws.read("drafts/via-mcp.md"), "written over MCP\n");
            assert_eq!(committed.len(), 1);
            assert_eq!(committed[0]["by"], "writer");
            assert!(committed[0]["task"].as_str().is_some());
        } else {
            assert!(
                !ws.path("drafts/via-mcp.md").exists(),
                "a failed task's write is not published"
            );
            assert!(committed.is_empty());
        }
    }
}

#[test]
fn mcp_inside_a_task_cannot_act_as_another_agent() {
    let ws = workspace();
    let out = ws
        .command(&["mcp", "--agent", "reviewer"])
        .env("BATON_TASK", "t-0000")
        .env("BATON_AGENT", "writer")
        .env("BATON_OUT", ws.marks.join("out"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("cannot act as another agent"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn mcp_an_agent_outside_a_task_cannot_pass_an_approval_gate() {
    let ws = TestWorkspace::new(
        r#"
[agents.publisher]
on = []
run = ["true"]
writes = ["drafts", "published"]

[stages.published]
approval = true
"#,
    );
    runtime().block_on(async {
        let s = connect(&ws, Era::Legacy, &["--agent", "publisher"], &[]).await;
        let said = s
            .refused(
                "write_file",
                json!({"path": "published/x.md", "content": "x"}),
                "approval_required",
            )
            .await;
        assert!(said.contains("approval"), "{said}");
        s.ok("write_file", json!({"path": "drafts/x.md", "content": "x"}))
            .await;
        s.close().await;
        // A person may publish there, as `baton write` does.
        let s = connect(&ws, Era::Legacy, &[], &[]).await;
        s.ok(
            "write_file",
            json!({"path": "published/x.md", "content": "x"}),
        )
        .await;
        s.close().await;
    });
}
