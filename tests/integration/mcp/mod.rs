//! `baton mcp`, driven as real clients drive it: rmcp's client over the child's stdio, in
//! both protocol eras (2025-11-25 `initialize`, 2026-07-28 `server/discover`). This file
//! is the client side shared by the tests: [`connect`] and a [`Session`]'s calls.
//!
//! - [`tools`]: the tool list, each tool and its refusals, paging, hostile input,
//!   timeouts, and the Python SDK as a second client;
//! - [`identity`]: who the tools act as (a person, `--agent`, a task), read-only, and
//!   delegation through the daemon;
//! - [`resources`]: resources and subscriptions in both eras.

mod identity;
mod resources;
mod tools;

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
