//! Resources (`baton://<path>`, `baton://status`, `baton://journal`) and subscriptions
//! to them in both eras.

use super::*;

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
