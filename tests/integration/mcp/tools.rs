//! The tools: their list and schemas, each call and its refusals, paged reads, input
//! that is not protocol, a call that cannot finish, and a second client.

use super::*;

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
        // A file outside the workspace, through a symlinked folder in a stage: not even
        // its hash is told.
        let outside = ws.root.with_file_name(format!(
            "{}-outside",
            ws.root.file_name().unwrap().to_string_lossy()
        ));
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("key.md"), "the secret\n").unwrap();
        std::os::unix::fs::symlink(&outside, ws.path("drafts/linked")).unwrap();
        s.refused(
            "who_wrote",
            json!({"path": "drafts/linked/key.md"}),
            "not_found",
        )
        .await;
        std::fs::remove_file(ws.path("drafts/linked")).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
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
fn mcp_survives_malformed_input_and_exits_at_end_of_input() {
    let ws = workspace();
    let (exited, replies) = mcp_exchange(
        &ws,
        &[
            "not json at all {{{",
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"\u0000bad"}}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"no/such/method"}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"list_files","arguments":{"limit":99999999999}}}"#,
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"task_status","arguments":{}}}"#,
        ],
    );
    assert_eq!(exited, Some(0), "baton mcp exits at the end of its input");
    let answered: Vec<i64> = replies.iter().filter_map(|r| r["id"].as_i64()).collect();
    for id in [1, 6] {
        assert!(answered.contains(&id), "request {id} answered: {replies:?}");
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
