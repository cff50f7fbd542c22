//! `baton mcp`, driven as real clients drive it: rmcp's client over the child's stdio, in
//! both protocol eras (2025-11-25 `initialize`, 2026-07-28 `server/discover`).

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ClientConfig, ProtocolVersion, ReadResourceRequestParams,
    ResourceContents, ResourceUpdatedNotificationParam, ServerNotification, SubscribeRequestParams,
    SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::harness::*;

const TOOLS: [&str; 9] = [
    "delegate",
    "list_agents",
    "list_files",
    "read_file",
    "search_files",
    "task_status",
    "trace",
    "who_wrote",
    "write_file",
];

const CONFIG: &str = r#"
[agents.writer]
on = ["briefs/*.md"]
run = ["agents/writer.sh"]
writes = ["drafts"]
retries = 0

[agents.reviewer]
on = []
run = ["agents/reviewer.sh"]
writes = ["reviews"]
delegates_to = []
"#;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Era {
    /// 2025-11-25: `initialize`, `resources/subscribe`.
    Legacy,
    /// 2026-07-28: `server/discover`, `subscriptions/listen`.
    Modern,
}

/// A client that passes on each `notifications/resources/updated` it is sent (the
/// 2025 era's subscriptions).
#[derive(Clone)]
struct Client {
    updates: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Client {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.updates.send(params.uri);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }
}

struct Session {
    client: RunningService<RoleClient, Client>,
    updates: mpsc::UnboundedReceiver<String>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `baton mcp -w WS ARGS…` with `env`, connected in `era`.
async fn connect(ws: &TestWorkspace, era: Era, args: &[&str], env: &[(&str, &str)]) -> Session {
    let mut command = tokio::process::Command::new(BATON);
    command
        .arg("-w")
        .arg(&ws.root)
        .arg("mcp")
        .args(args)
        .envs(env.iter().copied())
        .env_remove("BATON_TASK")
        .env_remove("RUST_LOG")
        .stderr(Stdio::inherit());
    let transport = TokioChildProcess::new(command).expect("starting baton mcp");
    let (tx, updates) = mpsc::unbounded_channel();
    let handler = Client { updates: tx };
    let lifecycle = match era {
        Era::Legacy => ClientLifecycleMode::Initialize,
        Era::Modern => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    };
    let client = tokio::time::timeout(
        Duration::from_secs(20),
        handler.serve_with_lifecycle(transport, lifecycle),
    )
    .await
    .expect("baton mcp answers the handshake in time")
    .expect("the handshake succeeds");
    Session { client, updates }
}

impl Session {
    /// Calls `tool` with `args`: the structured content, and whether it is an error.
    async fn call(&self, tool: &str, args: Value) -> (Value, bool) {
        let params = CallToolRequestParams::new(tool.to_string())
            .with_arguments(args.as_object().expect("arguments are an object").clone());
        let result = tokio::time::timeout(Duration::from_secs(30), self.client.call_tool(params))
            .await
            .unwrap_or_else(|_| panic!("{tool} answers in time"))
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        let value = result
            .structured_content
            .clone()
            .unwrap_or_else(|| panic!("{tool} gives structured content: {result:?}"));
        (value, result.is_error == Some(true))
    }

    async fn ok(&self, tool: &str, args: Value) -> Value {
        let (value, error) = self.call(tool, args.clone()).await;
        assert!(!error, "{tool} {args}: {value}");
        value
    }

    /// Calls `tool`, expecting it refused with `code`; the message.
    async fn refused(&self, tool: &str, args: Value, code: &str) -> String {
        let (value, error) = self.call(tool, args.clone()).await;
        assert!(
            error,
            "{tool} {args} should be refused with {code}: {value}"
        );
        assert_eq!(value["error"]["code"], code, "{tool} {args}: {value}");
        value["error"]["message"].as_str().unwrap().to_string()
    }

    async fn close(self) {
        let _ = self.client.cancel().await;
    }
}

fn workspace() -> TestWorkspace {
    let ws = TestWorkspace::marked(CONFIG)
        .agent(
            "writer",
            "mkdir -p \"$BATON_OUT/drafts\"\nprintf 'draft of %s\\n' \"$(basename \"$BATON_INPUT\")\" > \"$BATON_OUT/drafts/out.md\"",
        )
        .agent(
            "reviewer",
            "mkdir -p \"$BATON_OUT/reviews\"\necho reviewed > \"$BATON_OUT/reviews/r.md\"",
        );
    for stage in ["briefs", "drafts", "reviews", "published"] {
        fs::create_dir_all(ws.path(stage)).unwrap();
    }
    ws
}

#[test]
fn mcp_lists_exactly_its_tools_with_schemas_and_all_four_annotations_in_both_eras() {
    let ws = workspace();
    runtime().block_on(async {
        for era in [Era::Legacy, Era::Modern] {
            let s = connect(&ws, era, &[], &[]).await;
            let version = s
                .client
                .peer_info()
                .map(|info| info.protocol_version.clone());
            let want = match era {
                Era::Legacy => ProtocolVersion::V_2025_11_25,
                Era::Modern => ProtocolVersion::V_2026_07_28,
            };
            assert_eq!(version, Some(want), "{era:?}");
            let tools = s.client.list_all_tools().await.unwrap();
            let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
            names.sort();
            assert_eq!(names, TOOLS, "{era:?}");
            for t in &tools {
                let description = t.description.as_deref().unwrap_or_default();
                assert!(description.len() > 40, "{}: {description:?}", t.name);
                assert_eq!(t.input_schema["type"], "object", "{}", t.name);
                let output = t
                    .output_schema
                    .as_ref()
                    .unwrap_or_else(|| panic!("{} has an output schema", t.name));
                assert_eq!(output["type"], "object", "{}", t.name);
                let a = t
                    .annotations
                    .as_ref()
                    .unwrap_or_else(|| panic!("{} is annotated", t.name));
                let hints = [
                    a.read_only_hint,
                    a.destructive_hint,
                    a.idempotent_hint,
                    a.open_world_hint,
                ];
                assert!(hints.iter().all(Option::is_some), "{}: {a:?}", t.name);
                let writes = matches!(t.name.as_ref(), "write_file" | "delegate");
                assert_eq!(a.read_only_hint, Some(!writes), "{}", t.name);
                assert_eq!(a.open_world_hint, Some(false), "{}", t.name);
            }
            // Parameters carry descriptions a model can act on.
            let read = tools.iter().find(|t| t.name == "read_file").unwrap();
            let path = &read.input_schema["properties"]["path"];
            assert!(
                path["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("Workspace-relative")),
                "{path}"
            );
            assert_eq!(read.input_schema["required"], json!(["path"]));
            s.close().await;
        }
    });
}

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
fn mcp_writes_reads_and_refuses_with_stable_codes_in_both_eras() {
    for era in [Era::Legacy, Era::Modern] {
        writes_reads_and_refuses(era);
    }
}

fn writes_reads_and_refuses(era: Era) {
    let ws = workspace();
    ws.publish("published/picture.png", "\u{0}PNG binary\u{1}");
    runtime().block_on(async {
        let s = connect(&ws, era, &[], &[]).await;
        // A write as a person publishes at once, attributed to `human`.
        let w = s
            .ok(
                "write_file",
                json!({"path": "drafts/a.md", "content": "# Otters\nThey hold hands.\n"}),
            )
            .await;
        assert_eq!(w["status"], "published");
        assert_eq!(ws.read("drafts/a.md"), "# Otters\nThey hold hands.\n");
        let hash = w["hash"].as_str().unwrap().to_string();
        let r = s.ok("read_file", json!({"path": "drafts/a.md"})).await;
        assert_eq!(r["content"], "# Otters\nThey hold hands.\n");
        assert_eq!(r["hash"], hash.as_str());
        assert_eq!(r["next_offset"], Value::Null);
        assert_eq!(r["binary"], false);
        // Absolute paths inside the workspace are accepted.
        let abs = ws.path("drafts/a.md").display().to_string();
        assert_eq!(
            s.ok("read_file", json!({"path": abs})).await["hash"],
            hash.as_str()
        );

        // Stale writes are refused and write nothing.
        let said = s
            .refused(
                "write_file",
                json!({"path": "drafts/a.md", "content": "clobber", "expected_hash": "0000"}),
                "stale_write",
            )
            .await;
        assert!(said.contains(&hash), "{said}");
        s.refused(
            "write_file",
            json!({"path": "drafts/a.md", "content": "clobber", "expected_hash": ""}),
            "stale_write",
        )
        .await;
        assert_eq!(ws.read("drafts/a.md"), "# Otters\nThey hold hands.\n");
        let w2 = s
            .ok(
                "write_file",
                json!({"path": "drafts/a.md", "content": "# Otters\nv2\n", "expected_hash": hash}),
            )
            .await;
        assert_eq!(w2["replaced"], hash.as_str());
        s.ok(
            "write_file",
            json!({"path": "drafts/new.md", "content": "new\n", "expected_hash": ""}),
        )
        .await;
        let same = s
            .ok(
                "write_file",
                json!({"path": "drafts/new.md", "content": "new\n"}),
            )
            .await;
        assert_eq!(same["status"], "unchanged");

        // Paths: outside the workspace, not an artifact, missing, a folder.
        for path in ["../outside.md", "/etc/passwd", "drafts/../../x.md"] {
            s.refused("read_file", json!({"path": path}), "outside_workspace")
                .await;
            s.refused(
                "write_file",
                json!({"path": path, "content": "x"}),
                "outside_workspace",
            )
            .await;
        }
        for path in [
            "notastage/x.md",
            ".baton/journal/x",
            "drafts/.hidden",
            "drafts/a.md.tmp",
            "baton.toml",
        ] {
            s.refused(
                "write_file",
                json!({"path": path, "content": "x"}),
                "not_an_artifact",
            )
            .await;
        }
        s.refused(
            "write_file",
            json!({"path": "drafts", "content": "x"}),
            "not_an_artifact",
        )
        .await;
        s.refused(
            "read_file",
            json!({"path": "drafts/missing.md"}),
            "not_found",
        )
        .await;
        s.refused(
            "read_file",
            json!({"path": "drafts/a.md", "limit": 0}),
            "invalid_arguments",
        )
        .await;
        s.refused("read_file", json!({"nopath": 1}), "invalid_arguments")
            .await;
        s.refused("read_file", json!({"path": 7}), "invalid_arguments")
            .await;
        s.refused("no_such_tool", json!({}), "invalid_arguments")
            .await;
        assert!(!ws.root.with_file_name("outside.md").exists());

        // Binary files are described, not dumped.
        let b = s
            .ok("read_file", json!({"path": "published/picture.png"}))
            .await;
        assert_eq!(b["binary"], true);
        assert_eq!(b["content"], Value::Null);

        // Listing, with authors, filters and pages.
        let all = s.ok("list_files", json!({})).await;
        let paths: Vec<&str> = all["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            ["drafts/a.md", "drafts/new.md", "published/picture.png"]
        );
        assert_eq!(all["files"][0]["author"], "human");
        assert_eq!(all["files"][0]["stage"], "drafts");
        assert!(all["files"][0]["modified"].as_str().unwrap().ends_with('Z'));
        let globbed = s.ok("list_files", json!({"glob": "drafts/*.md"})).await;
        assert_eq!(globbed["files"].as_array().unwrap().len(), 2);
        let staged = s.ok("list_files", json!({"stage": "published"})).await;
        assert_eq!(staged["files"].as_array().unwrap().len(), 1);
        s.refused("list_files", json!({"stage": "nowhere"}), "not_found")
            .await;
        s.refused(
            "list_files",
            json!({"glob": "drafts/[*"}),
            "invalid_arguments",
        )
        .await;
        let page1 = s.ok("list_files", json!({"limit": 2})).await;
        assert_eq!(page1["files"].as_array().unwrap().len(), 2);
        let cursor = page1["next_cursor"].as_str().unwrap().to_string();
        let page2 = s
            .ok("list_files", json!({"limit": 2, "cursor": cursor}))
            .await;
        assert_eq!(page2["files"][0]["path"], "published/picture.png");
        assert_eq!(page2["next_cursor"], Value::Null);

        // Search, with snippets; a query that does not parse is bad_query.
        let hits = s.ok("search_files", json!({"query": "otters"})).await;
        assert_eq!(hits["hits"][0]["path"], "drafts/a.md", "{hits}");
        assert!(
            hits["hits"][0]["snippet"].as_str().unwrap().contains("v2"),
            "{hits}"
        );
        s.refused("search_files", json!({"query": "\"unclosed"}), "bad_query")
            .await;
        s.refused("search_files", json!({"query": "  "}), "bad_query")
            .await;
        s.refused(
            "search_files",
            json!({"query": "x", "stage": "nowhere"}),
            "not_found",
        )
        .await;

        // Authorship and tasks.
        let who = s.ok("who_wrote", json!({"path": "drafts/a.md"})).await;
        let versions = who["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 2);
        assert!(versions.iter().all(|v| v["by"] == "human"), "{who}");
        assert_eq!(who["on_disk_known"], true);
        s.refused("who_wrote", json!({"path": "drafts/never.md"}), "not_found")
            .await;
        let overview = s.ok("task_status", json!({})).await;
        assert!(
            overview["overview"]["agents"]
                .as_array()
                .is_some_and(|a| a.len() == 2),
            "{overview}"
        );
        s.refused("task_status", json!({"task": "t-nosuchtask"}), "not_found")
            .await;
        s.refused(
            "trace",
            json!({"path_or_task": "t-nosuchtask"}),
            "not_found",
        )
        .await;
        s.close().await;
    });
}

#[test]
fn mcp_reads_large_files_in_pages_cut_between_characters() {
    let ws = workspace();
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!("line {i}: caf\u{e9} \u{1f9a6}\n"));
    }
    ws.publish("drafts/big.md", &text);
    runtime().block_on(async {
        let s = connect(&ws, Era::Modern, &[], &[]).await;
        let mut read = String::new();
        let mut offset = 0u64;
        let mut pages = 0;
        loop {
            let page = s
                .ok(
                    "read_file",
                    json!({"path": "drafts/big.md", "offset": offset, "limit": 10_000}),
                )
                .await;
            assert_eq!(page["offset"], offset);
            read.push_str(page["content"].as_str().unwrap());
            pages += 1;
            match page["next_offset"].as_u64() {
                Some(next) => offset = next,
                None => break,
            }
        }
        assert_eq!(read, text);
        assert!(pages > 30, "{pages} pages");
        s.close().await;
    });
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
fn mcp_resources_list_and_read_artifacts_status_and_journal() {
    let ws = workspace();
    ws.publish("drafts/a.md", "# A\n");
    ws.publish("published/bin.dat", "\u{0}\u{1}\u{2}");
    // The journal knows the files once a command has caught up.
    ws.baton(&["search", "A"]);
    runtime().block_on(async {
        for era in [Era::Legacy, Era::Modern] {
            let s = connect(&ws, era, &[], &[]).await;
            s.ok("write_file", json!({"path": "drafts/b.md", "content": "# B\n"})).await;
            let resources = s.client.list_all_resources().await.unwrap();
            let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
            for want in ["baton://status", "baton://journal", "baton://drafts/a.md", "baton://drafts/b.md", "baton://published/bin.dat"] {
                assert!(uris.contains(&want), "{era:?}: {uris:?}");
            }
            let read = |uri: &str| {
                let uri = uri.to_string();
                let client = &s.client;
                async move { client.read_resource(ReadResourceRequestParams::new(uri)).await }
            };
            let a = read("baton://drafts/a.md").await.unwrap();
            match &a.contents[0] {
                ResourceContents::TextResourceContents { text, mime_type, .. } => {
                    assert_eq!(text, "# A\n");
                    assert_eq!(mime_type.as_deref(), Some("text/markdown"));
                }
                other => panic!("{other:?}"),
            }
            let bin = read("baton://published/bin.dat").await.unwrap();
            assert!(matches!(&bin.contents[0], ResourceContents::BlobResourceContents { blob, .. } if blob == "AAEC"), "{bin:?}");
            let status = read("baton://status").await.unwrap();
            let ResourceContents::TextResourceContents { text, .. } = &status.contents[0] else { panic!() };
            let status: Value = serde_json::from_str(text).unwrap();
            assert!(status["agents"].is_array(), "{status}");
            let journal = read("baton://journal").await.unwrap();
            let ResourceContents::TextResourceContents { text, .. } = &journal.contents[0] else { panic!() };
            let journal: Value = serde_json::from_str(text).unwrap();
            assert!(journal.as_array().unwrap().iter().any(|e| e["path"] == "drafts/b.md"), "{journal}");
            assert!(read("baton://drafts/none.md").await.is_err());
            assert!(read("baton://../etc/passwd").await.is_err());
            assert!(read("file:///etc/passwd").await.is_err());
            s.close().await;
        }
    });
}

#[test]
fn mcp_subscribers_hear_of_a_version_the_daemon_commits_in_both_eras() {
    let ws = workspace();
    let _daemon = ws.daemon();
    runtime().block_on(async {
        // 2025-11-25: resources/subscribe, notifications through the client handler.
        let mut legacy = connect(&ws, Era::Legacy, &[], &[]).await;
        for uri in ["baton://drafts/out.md", "baton://journal"] {
            #[allow(deprecated)]
            legacy
                .client
                .subscribe(SubscribeRequestParams::new(uri))
                .await
                .unwrap();
        }
        // 2026-07-28: subscriptions/listen.
        let modern = connect(&ws, Era::Modern, &[], &[]).await;
        let filter = SubscriptionFilter::builder()
            .resource_subscription("baton://drafts/out.md")
            .resource_subscription("baton://status")
            .build();
        let mut sub = modern.client.listen(filter).await.unwrap();

        ws.publish("briefs/one.md", "# One\n");
        let mut heard = Vec::new();
        while !heard.contains(&"baton://drafts/out.md".to_string()) {
            let uri = tokio::time::timeout(Duration::from_secs(20), legacy.updates.recv())
                .await
                .expect("the legacy subscriber hears of the commit")
                .unwrap();
            heard.push(uri);
        }
        assert!(heard.contains(&"baton://journal".to_string()), "{heard:?}");
        let mut modern_heard = Vec::new();
        while !modern_heard.contains(&"baton://drafts/out.md".to_string()) {
            let n = tokio::time::timeout(Duration::from_secs(20), sub.next())
                .await
                .expect("the modern subscriber hears of the commit")
                .unwrap()
                .expect("the subscription is open");
            if let ServerNotification::ResourceUpdatedNotification(u) = n {
                modern_heard.push(u.params.uri);
            }
        }
        assert!(
            modern_heard.contains(&"baton://status".to_string()),
            "{modern_heard:?}"
        );
        assert!(
            !modern_heard.contains(&"baton://journal".to_string()),
            "only what it asked for"
        );
        assert_eq!(ws.read("drafts/out.md"), "draft of one.md\n");
        let _ = sub.cancel().await;
        legacy.close().await;
        modern.close().await;
    });
}

#[test]
fn mcp_survives_malformed_input_and_exits_at_end_of_input() {
    use std::io::Write;
    let ws = workspace();
    let mut child = ws
        .command(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        "not json at all {{{",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file"}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"\u0000bad"}}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"no/such/method"}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"list_files","arguments":{"limit":99999999999}}}"#,
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"task_status","arguments":{}}}"#,
    ];
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let exited = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(exited, Some(0), "baton mcp exits at the end of its input");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let replies: Vec<Value> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stdout is only protocol: {l:?}: {e}"))
        })
        .collect();
    let answered: Vec<i64> = replies.iter().filter_map(|r| r["id"].as_i64()).collect();
    for id in [1, 6] {
        assert!(answered.contains(&id), "request {id} answered: {stdout}");
    }
    let status = replies.iter().find(|r| r["id"] == 6).unwrap();
    assert_eq!(status["result"]["isError"], false, "{status}");
}

/// A second client implementation: the official Python SDK, in both eras
/// (tests/mcp/python_client.py). It needs a Python with `mcp` 2.3 installed, named by
/// `BATON_TEST_PYTHON`; `.ci/run` makes one, so CI always runs this.
#[test]
fn mcp_works_with_the_python_sdk_in_both_eras() {
    let Some(python) = std::env::var_os("BATON_TEST_PYTHON") else {
        eprintln!("skipped: set BATON_TEST_PYTHON to a Python with `mcp` 2.3 (as .ci/run does)");
        return;
    };
    let ws = workspace();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/python_client.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(BATON)
        .arg(&ws.root)
        .stdin(Stdio::null())
        .output()
        .expect("running python");
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("both eras ok"), "{}", text(&out));
}

#[test]
fn mcp_a_call_that_cannot_finish_times_out_and_the_server_goes_on() {
    let ws = workspace();
    ws.publish("drafts/held.md", "held\n");
    // A read waits for the shared lock, which this `baton lock` keeps for a minute.
    let mut holder = {
        use std::os::unix::process::CommandExt as _;
        ws.command(&["lock", "drafts/held.md", "--", "sleep", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let sidecar = ws.path(".baton/locks");
    wait_for("the lock to be held", Duration::from_secs(10), || {
        fs::read_dir(&sidecar).is_ok_and(|mut d| d.next().is_some())
    });
    runtime().block_on(async {
        let s = connect(
            &ws,
            Era::Modern,
            &[],
            &[("BATON_TEST_MCP_TIMEOUT_MS", "500")],
        )
        .await;
        let said = s
            .refused("read_file", json!({"path": "drafts/held.md"}), "timeout")
            .await;
        assert!(said.contains("500 ms"), "{said}");
        // The stuck call holds nothing up.
        let listed = s.ok("list_files", json!({})).await;
        assert_eq!(listed["files"][0]["path"], "drafts/held.md");
        s.close().await;
    });
    // SAFETY: signals the process group this test made for `baton lock` and its sleep.
    unsafe { libc::kill(-(holder.id() as i32), libc::SIGKILL) };
    let _ = holder.wait();
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
