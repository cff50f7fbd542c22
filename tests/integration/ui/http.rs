//! The HTTP endpoints of `baton ui`, over a real socket.

use std::time::Duration;

use serde_json::json;

use super::*;

#[test]
fn the_token_is_required_and_a_cookie_carries_it() {
    let ws = team();
    let ui = Ui::start(&ws);
    let host = format!("127.0.0.1:{}", ui.port);
    // No token, a wrong one: refused, with what to do.
    let none = ui.request("GET", "/api/now", &[("Cookie", "")], "");
    assert_eq!(none.status, 401, "{}", none.body);
    assert!(
        none.body.contains("open the URL `baton ui` printed"),
        "{}",
        none.body
    );
    let wrong = ui.request("GET", "/", &[("Cookie", "baton_token=0123")], "");
    assert_eq!(wrong.status, 401);
    let wrong = ui.request(
        "GET",
        "/?token=ffffffffffffffffffffffffffffffff",
        &[("Cookie", "")],
        "",
    );
    assert_eq!(wrong.status, 401);
    for path in ["/assets/app.js", "/events", "/api/feed"] {
        assert_eq!(
            ui.request("GET", path, &[("Cookie", "")], "").status,
            401,
            "{path}"
        );
    }
    // The URL it printed: the page, and the cookie that carries the token from then on.
    let path = format!("/?token={}", ui.token);
    let page = ui.request("GET", &path, &[("Cookie", "")], "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>baton</title>"));
    let cookie = page.header("set-cookie").expect("a cookie");
    assert!(
        cookie.starts_with(&format!("baton_token={}", ui.token)),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("script-src 'self'"))
    );
    assert_eq!(ui.get("/api/now").status, 200);
    // A page served under another name (DNS rebinding) is refused even with the token.
    let rebound = ui.request("GET", "/api/now", &[("Host", "attacker.example:80")], "");
    assert_eq!(rebound.status, 403, "{}", rebound.body);
    let _ = host;
}

#[test]
fn a_request_that_changes_something_needs_the_pages_origin() {
    let ws = team();
    let ui = Ui::start(&ws);
    let body = json!({"name": "x.md", "content": "# X\n"}).to_string();
    for origin in ["", "http://attacker.example", "null", "http://127.0.0.1:1"] {
        let reply = ui.request(
            "POST",
            "/api/drop",
            &[("Origin", origin), ("Content-Type", "application/json")],
            &body,
        );
        assert_eq!(reply.status, 403, "Origin {origin:?}: {}", reply.body);
        assert!(reply.body.contains("Origin is checked"), "{}", reply.body);
    }
    // Without the token, the right Origin is not enough.
    let origin = ui.origin();
    let reply = ui.request(
        "POST",
        "/api/drop",
        &[
            ("Origin", &origin),
            ("Cookie", ""),
            ("Content-Type", "application/json"),
        ],
        &body,
    );
    assert_eq!(reply.status, 401);
    assert!(!ws.path("briefs/x.md").exists(), "nothing was dropped");
    assert!(ws.records("artifact").is_empty());
    // From the page: dropped, as `human`.
    let reply = ui.post("/api/drop", json!({"name": "x.md", "content": "# X\n"}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(ws.read("briefs/x.md"), "# X\n");
    let artifact = &ws.records("artifact")[0];
    assert_eq!(
        (&artifact["path"], &artifact["by"]),
        (&json!("briefs/x.md"), &json!("human"))
    );
}

#[test]
fn each_action_does_what_its_command_does_journalled_as_human() {
    let ws = team();
    ws.publish("briefs/a.md", "first\n");
    ws.publish("briefs/b.md", "second\n");
    ws.publish("briefs/fail.md", "never\n");
    ws.run_once(1);
    let ui = Ui::start(&ws);
    let (a, b, fail) = (
        task_of(&ws, "briefs/a.md"),
        task_of(&ws, "briefs/b.md"),
        task_of(&ws, "briefs/fail.md"),
    );

    // Approve: the held draft is committed.
    let reply = ui.post("/api/approve", json!({"task": a, "note": "ship it"}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("committed published/a.md")
    );
    assert_eq!(ws.read("published/a.md"), "# Draft of a.md\n\nfirst\n");
    // Reject needs a note; then nothing is committed.
    let reply = ui.post("/api/reject", json!({"task": b}));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "invalid_arguments");
    assert_eq!(
        ui.post("/api/reject", json!({"task": b, "note": "not this"}))
            .status,
        200
    );
    assert!(!ws.path("published/b.md").exists());
    let approvals = ws.records("approval");
    assert_eq!(approvals.len(), 2);
    assert!(
        approvals.iter().all(|r| r["by"] == "human"),
        "{approvals:?}"
    );
    assert_eq!(
        (&approvals[0]["decision"], &approvals[0]["note"]),
        (&json!("approved"), &json!("ship it"))
    );
    assert_eq!(
        (&approvals[1]["decision"], &approvals[1]["note"]),
        (&json!("rejected"), &json!("not this"))
    );

    // Retry: queued again; cancel: dead, by human.
    assert_eq!(ui.post("/api/retry", json!({"task": fail})).status, 200);
    let requeued = ws.records("task.queued");
    assert_eq!(requeued.last().unwrap()["reason"], "retry");
    let reply = ui.post("/api/retry", json!({"task": fail}));
    assert_eq!(reply.status, 400, "retrying a queued task: {}", reply.body);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is queued already")
    );
    assert_eq!(ui.post("/api/cancel", json!({"task": fail})).status, 200);
    let cancelled = ws.records("task.cancelled");
    assert_eq!(
        (&cancelled[0]["task"], &cancelled[0]["by"]),
        (&json!(fail), &json!("human"))
    );
    // An unknown task, a bad body: said so, nothing journalled.
    let before = ws.journal().len();
    let reply = ui.post("/api/cancel", json!({"task": "t-ffffffffffff"}));
    assert_eq!(
        (reply.status, reply.json()["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let reply = ui.post("/api/cancel", json!({"tsak": "x"}));
    assert!(
        reply.status == 400 || reply.status == 422,
        "{}",
        reply.status
    );
    // A drop the daemon would reject is refused with its reason.
    let reply = ui.post(
        "/api/drop",
        json!({"name": "c.md", "content": "+++\nto = \"nobody\"\n+++\n"}),
    );
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("names no agent")
    );
    let reply = ui.post("/api/drop", json!({"name": "../c.md", "content": "x"}));
    assert_eq!(reply.status, 400);
    assert_eq!(ws.journal().len(), before);
}

#[test]
fn now_feed_task_logs_artifact_diff_and_search_answer_without_a_daemon() {
    let ws = team();
    ws.publish("briefs/a.md", "first\n");
    ws.publish("briefs/fail.md", "never\n");
    ws.run_once(1);
    let a = task_of(&ws, "briefs/a.md");
    assert_eq!(ws.baton(&["approve", &a]).status.code(), Some(0));
    // A second version of the brief, for the diff (dropped: journalled, the first kept).
    let second = ws.root.with_file_name("a.md");
    std::fs::write(&second, "first\nand more\n").unwrap();
    assert_eq!(
        ws.baton(&["drop", second.to_str().unwrap()]).status.code(),
        Some(0)
    );
    let ui = Ui::start(&ws);

    let now = ui.get_json("/api/now");
    assert_eq!(now["daemon"]["running"], false);
    assert_eq!(now["agents"][0]["name"], "writer");
    assert_eq!(now["dead"][0]["input"], "briefs/fail.md");
    assert!(now["last_seq"].as_u64().unwrap() > 0);

    // The feed: one row per task, newest first; filters; pages.
    let feed = ui.get_json("/api/feed");
    let rows = feed["rows"].as_array().unwrap();
    let tasks: Vec<&Value> = rows.iter().filter(|r| r["kind"] == "task").collect();
    assert_eq!(tasks.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r["kind"] == "artifact" && r["path"] == "briefs/a.md")
    );
    let failed = ui.get_json("/api/feed?failed=true");
    let failed = failed["rows"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (&failed[0]["status"], &failed[0]["input"]),
        (&json!("dead"), &json!("briefs/fail.md"))
    );
    assert_eq!(
        ui.get_json("/api/feed?agent=nobody")["rows"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let published = ui.get_json("/api/feed?stage=published");
    assert_eq!(
        published["rows"].as_array().unwrap().len(),
        1,
        "{published}"
    );
    // The text finds the task on the brief and the brief's own arrival.
    let found = ui.get_json("/api/feed?q=FAIL.md");
    let kinds: Vec<&str> = found["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["task", "artifact"], "{found}");
    let first = ui.get_json("/api/feed?limit=1");
    let before = first["next_before"].as_u64().expect("a next page");
    let second = ui.get_json(&format!("/api/feed?limit=1&before={before}"));
    assert_ne!(first["rows"][0], second["rows"][0]);

    // A task: its tree, its task.json, its logs.
    let task = ui.get_json(&format!("/api/task/{}", &a[..8]));
    assert_eq!(task["task"]["status"], "done");
    assert_eq!(task["trace"]["trees"][0]["task"], a.as_str());
    assert_eq!(task["task_json"]["input"], "briefs/a.md");
    assert_eq!(task["actions"], json!(["retry"]));
    let fail = task_of(&ws, "briefs/fail.md");
    let logs = ui.get_json(&format!("/api/logs/{fail}"));
    assert!(
        logs["text"]
            .as_str()
            .unwrap()
            .contains("cannot write fail.md"),
        "{logs}"
    );
    let from = logs["next"].as_u64().unwrap();
    let rest = ui.get_json(&format!("/api/logs/{fail}?from={from}"));
    assert_eq!(rest["text"], "", "nothing new past the end");
    assert_eq!(ui.get(&format!("/api/logs/{fail}?stream=nope")).status, 400);

    // An artifact: rendered, its versions, a diff.
    let art = ui.get_json("/api/artifact?path=published/a.md");
    assert!(
        art["html"]
            .as_str()
            .unwrap()
            .contains("<h1>Draft of a.md</h1>"),
        "{art}"
    );
    let brief = ui.get_json("/api/artifact?path=briefs/a.md");
    let versions = brief["who"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    let old = versions[0]["hash"].as_str().unwrap();
    let old_doc = ui.get_json(&format!(
        "/api/artifact?path=briefs/a.md&version={}",
        &old[..10]
    ));
    assert_eq!(
        old_doc["text"], "first\n",
        "the replaced version, from objects/"
    );
    let diff = ui.get_json(&format!("/api/diff?path=briefs/a.md&from={old}"));
    assert_eq!(
        diff["lines"],
        json!([{"op": "equal", "text": "first"}, {"op": "insert", "text": "and more"}])
    );
    assert_eq!(ui.get("/api/artifact?path=../../etc/passwd").status, 400);
    assert_eq!(
        ui.get("/api/artifact?path=briefs/a.md&version=zz").status,
        404
    );

    // Search, with snippets.
    let hits = ui.get_json("/api/search?q=draft");
    assert_eq!(hits["hits"][0]["path"], "published/a.md", "{hits}");
    assert_eq!(ui.get("/api/search?q=").status, 400);
}

#[test]
fn artifact_markdown_is_sanitized_before_it_reaches_the_page() {
    let ws = team();
    ws.publish(
        "briefs/evil.md",
        "# Hi\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))\n",
    );
    let ui = Ui::start(&ws);
    let art = ui.get_json("/api/artifact?path=briefs/evil.md");
    let html = art["html"].as_str().unwrap();
    assert!(
        !html.contains("<script") && !html.contains("javascript:"),
        "{html}"
    );
}

#[test]
fn an_artifact_is_never_read_through_a_symlink_out_of_the_workspace() {
    let ws = team();
    let outside = ws.root.with_file_name("secret");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("key.md"), "the secret\n").unwrap();
    std::fs::create_dir_all(ws.path("briefs")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.path("briefs/linked")).unwrap();
    std::os::unix::fs::symlink(outside.join("key.md"), ws.path("briefs/key.md")).unwrap();
    let ui = Ui::start(&ws);
    for path in ["briefs/linked/key.md", "briefs/key.md"] {
        let reply = ui.get(&format!("/api/artifact?path={path}"));
        assert!(!reply.body.contains("the secret"), "{path}: {}", reply.body);
        assert_ne!(reply.status, 500, "{path}: {}", reply.body);
    }
}

#[test]
fn events_resume_from_last_event_id_without_gaps_or_doubles() {
    let ws = team();
    for i in 0..5 {
        drop_file(&ws, &format!("e{i}.md"));
    }
    let seqs: Vec<u64> = ws
        .journal()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let last = *seqs.last().unwrap();
    let ui = Ui::start(&ws);
    // Resuming after the second entry: the three after it, in order, then live ones.
    let mut events = Events::open(&ui, "", Some(seqs[1]));
    let got = events.until(Duration::from_secs(10), |got| got.len() >= 3);
    let ids: Vec<u64> = got.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(ids, seqs[2..].to_vec());
    drop_file(&ws, "live.md");
    let got = events.until(Duration::from_secs(10), |got| !got.is_empty());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, last + 1);
    assert_eq!(got[0].0, "entry");
    let entry: Value = serde_json::from_str(&got[0].2).unwrap();
    assert_eq!(entry["path"], "briefs/live.md");
    // `?after=` for a first connection, the same way; a page far behind is told to resync.
    let mut again = Events::open(&ui, &format!("?after={last}"), None);
    let got = again.until(Duration::from_secs(10), |got| !got.is_empty());
    assert_eq!(got[0].1, last + 1);
    let nothing = again.until(Duration::from_millis(600), |_| false);
    assert!(nothing.is_empty(), "no doubles: {nothing:?}");
}

/// `baton drop` of a new brief `name`: journalled, as a person's drop is.
fn drop_file(ws: &TestWorkspace, name: &str) {
    let file = ws.root.with_file_name(name);
    std::fs::write(&file, format!("# {name}\n")).unwrap();
    let out = ws.baton(&["drop", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
