//! `baton mcp`: the workspace served to an LLM agent over MCP (stdio), with the official
//! SDK (rmcp), in both protocol eras (2025-11-25 `initialize`, 2026-07-28
//! `server/discover`). Tools list, read, write, search and delegate through the same
//! code as the CLI ([`crate::act`], the reports of `status`, `trace` and `who`), so the
//! guarantees are the CLI's: path locks, atomic writes, scopes, attribution, delegation
//! limits. Resources are the artifacts (`baton://<path>`), `baton://status` and
//! `baton://journal`; a subscriber hears of changes as the journal records them.
//!
//! - [`tools`]: the tools, their schemas and descriptions.
//! - [`files`]: listing and paged reading.
//! - [`feed`]: the journal followed, as the resources each entry changes.
//!
//! Every call's file-system work runs on a blocking thread under a deadline, so a hung
//! file system makes a call fail with `timeout` instead of hanging the server.

mod feed;
mod files;
mod tools;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::{IntoCallToolResult, ToolCallContext};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceUpdatedNotificationParam,
    ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter,
    UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt as _};
use serde_json::json;
use tokio::sync::broadcast;

use crate::act::Actor;
use crate::config::Config;
use crate::error::{Code, code_of, refuse};
use crate::workspace::{RelPath, Workspace, lexical_normalise};

/// How long one call's file-system work may take before the call fails with `timeout`.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Artifacts per page of `resources/list`.
const RESOURCES_PAGE: usize = 500;

/// Serves MCP on stdin/stdout until the client closes stdin.
pub(crate) fn run(ws: &Workspace, agent: Option<&str>, read_only: bool) -> Result<u8> {
    let cfg = crate::config::load_for_command(ws)?;
    let actor = Actor::resolve(&cfg, agent)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let desk = Desk::new(ws.clone(), cfg, actor, read_only);
    tracing::info!(
        workspace = %ws.root.display(),
        identity = %desk.inner.identity(),
        read_only,
        "serving MCP on stdio"
    );
    runtime.block_on(async move {
        let service = desk
            .serve(rmcp::transport::stdio())
            .await
            .context("starting the MCP session")?;
        service.waiting().await.context("serving MCP")?;
        anyhow::Ok(())
    })?;
    // The feed's thread and any call stuck in the file system are not waited for.
    runtime.shutdown_background();
    Ok(0)
}

/// The server: one per connection.
#[derive(Clone)]
pub(crate) struct Desk {
    inner: Arc<Inner>,
    tool_router: ToolRouter<Desk>,
}

/// What every call shares.
pub(crate) struct Inner {
    ws: Workspace,
    actor: Actor,
    read_only: bool,
    /// The config, reloaded when `baton.toml` changes.
    config: Mutex<(Option<SystemTime>, Arc<Config>)>,
    /// What the server tells a client at the handshake, made once: rmcp asks for the
    /// server's info on many calls, and it must not touch the file system there.
    instructions: String,
    /// The search index, opened on the first search.
    index: Mutex<Option<Arc<crate::index::store::Store>>>,
    /// What each new journal entry changes.
    feed: broadcast::Sender<Arc<crate::journal::Entry>>,
    /// The URIs a 2025-era client subscribed to with `resources/subscribe`, and the
    /// client to tell (set on the first subscription).
    legacy: Mutex<Legacy>,
}

#[derive(Default)]
struct Legacy {
    uris: HashSet<String>,
    forwarding: bool,
}

impl Desk {
    fn new(ws: Workspace, cfg: Config, actor: Actor, read_only: bool) -> Desk {
        let mut tool_router = Desk::tool_router();
        if read_only {
            for name in tools::WRITING {
                tool_router.remove_route(name);
            }
        }
        let mtime = config_mtime(&ws);
        let instructions = instructions(&ws, &cfg, &actor, read_only);
        Desk {
            inner: Arc::new(Inner {
                feed: crate::journal::follow::follow(ws.clone(), "mcp-feed"),
                ws,
                actor,
                read_only,
                instructions,
                config: Mutex::new((mtime, Arc::new(cfg))),
                index: Mutex::new(None),
                legacy: Mutex::new(Legacy::default()),
            }),
            tool_router,
        }
    }

    /// Runs `work` on a blocking thread under [`CALL_TIMEOUT`]; its error becomes a
    /// tool error with the error's code.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T, ToolError> {
        let inner = self.inner.clone();
        let job = tokio::task::spawn_blocking(move || work(&inner));
        let limit = call_timeout();
        match tokio::time::timeout(limit, job).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(e))) => Err(ToolError::from(e)),
            Ok(Err(panicked)) => Err(ToolError {
                code: Code::Internal,
                message: format!("the call failed inside baton ({panicked}); please report it"),
            }),
            Err(_) => Err(ToolError {
                code: Code::Timeout,
                message: format!(
                    "the file system (or a lock held on the path) did not answer within {} ms; \
                     nothing is known to have been done, check before trying again",
                    limit.as_millis()
                ),
            }),
        }
    }
}

impl Inner {
    /// The config as `baton.toml` holds it now (the last good one if it no longer
    /// loads: an edit in progress must not take every tool down).
    fn config(&self) -> Arc<Config> {
        let mut cached = self.config.lock().unwrap_or_else(|e| e.into_inner());
        let mtime = config_mtime(&self.ws);
        if mtime != cached.0 {
            match Config::load(&self.ws) {
                Ok(cfg) => *cached = (mtime, Arc::new(cfg)),
                Err(e) => {
                    tracing::warn!("baton.toml does not load ({e:#}); keeping the last good config")
                }
            }
        }
        cached.1.clone()
    }

    /// The search index, opened once.
    fn index(&self) -> Result<Arc<crate::index::store::Store>> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = &*index {
            return Ok(store.clone());
        }
        let store = Arc::new(crate::index::store::Store::open_for_search(&self.ws)?);
        *index = Some(store.clone());
        Ok(store)
    }

    /// Who the tools act as, for people and for logs.
    fn identity(&self) -> String {
        match &self.actor {
            Actor::Human => "human".to_string(),
            Actor::Agent(name) => format!("agent `{name}`"),
            Actor::InTask(t) => format!("agent `{}` in task {}", t.agent_name(), t.task),
        }
    }

    /// A path a tool was given, as a workspace path: relative paths are from the
    /// workspace root (never the server's current folder); an absolute one must be
    /// inside the workspace or, in a task, its staging tree.
    fn rel(&self, given: &str) -> Result<RelPath> {
        let path = Path::new(given);
        if path.is_absolute() {
            let path = lexical_normalise(path);
            let inside = self
                .actor
                .out()
                .and_then(|out| path.strip_prefix(out).ok())
                .or_else(|| path.strip_prefix(&self.ws.root).ok());
            return match inside {
                Some(rel) => RelPath::from_path(rel)
                    .map_err(|e| refuse(Code::InvalidArguments, format!("{e:#}"))),
                None => Err(refuse(
                    Code::OutsideWorkspace,
                    format!(
                        "{given} is outside the workspace {}; give a workspace-relative path \
                         such as drafts/plan.md",
                        self.ws.root.display()
                    ),
                )),
            };
        }
        RelPath::new(given).map_err(|e| {
            let code = if given.split('/').any(|p| p == "..") {
                Code::OutsideWorkspace
            } else {
                Code::InvalidArguments
            };
            refuse(code, format!("{e:#}"))
        })
    }
}

/// [`CALL_TIMEOUT`]; debug builds only: tests set `BATON_TEST_MCP_TIMEOUT_MS`.
fn call_timeout() -> Duration {
    if cfg!(debug_assertions) {
        if let Some(ms) = std::env::var("BATON_TEST_MCP_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            return Duration::from_millis(ms);
        }
    }
    CALL_TIMEOUT
}

fn config_mtime(ws: &Workspace) -> Option<SystemTime> {
    std::fs::metadata(ws.root.join(crate::workspace::CONFIG_FILE))
        .and_then(|m| m.modified())
        .ok()
}

/// A tool's failure, as the model sees it: `isError` with a stable code and the CLI's
/// message, in `structuredContent` and as text.
#[derive(Debug)]
pub(crate) struct ToolError {
    code: Code,
    message: String,
}

impl From<anyhow::Error> for ToolError {
    fn from(e: anyhow::Error) -> ToolError {
        ToolError {
            code: code_of(&e),
            message: format!("{e:#}"),
        }
    }
}

impl ToolError {
    fn result(code: Code, message: String) -> CallToolResult {
        let code_name = serde_json::to_value(code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut result = CallToolResult::structured_error(json!({
            "error": { "code": code_name, "message": message }
        }));
        result.content = vec![ContentBlock::text(format!("error {code_name}: {message}"))];
        result
    }
}

impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, McpError> {
        Ok(ToolError::result(self.code, self.message).into())
    }
}

impl ServerHandler for Desk {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("baton", env!("CARGO_PKG_VERSION")))
            .with_instructions(self.inner.instructions.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        if !self.tool_router.has_route(&name) {
            let known: Vec<String> = self
                .tool_router
                .list_all()
                .into_iter()
                .map(|t| t.name.to_string())
                .collect();
            let why = if self.inner.read_only && tools::WRITING.contains(&name.as_str()) {
                format!("`{name}` is not offered: this server runs with --read-only")
            } else {
                format!("no tool `{name}`; the tools are {}", known.join(", "))
            };
            return Ok(ToolError::result(Code::InvalidArguments, why).into());
        }
        let response = self
            .tool_router
            .call(ToolCallContext::new(self, request, context))
            .await?;
        // Arguments that do not deserialize come back from the router as a bare error
        // result: give it the code every other refusal has.
        Ok(match response {
            CallToolResponse::Complete(result)
                if result.is_error == Some(true) && result.structured_content.is_none() =>
            {
                let text: Vec<String> = result
                    .content
                    .iter()
                    .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                    .collect();
                ToolError::result(Code::InvalidArguments, text.join(" ")).into()
            }
            other => other,
        })
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, McpError> {
        let modern = context
            .protocol_version()
            .is_some_and(|v| v >= rmcp::model::ProtocolVersion::V_2026_07_28);
        let mut result = rmcp::model::ListToolsResult::with_all_items(self.tool_router.list_all());
        if modern {
            result.ttl_ms = Some(60_000);
            result.cache_scope = Some(rmcp::model::CacheScope::Public);
        }
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.tool_router.get(name).cloned()
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let cursor = request.and_then(|r| r.cursor);
        let first = cursor.is_none();
        let page = self
            .blocking(move |inner| {
                let cfg = inner.config();
                let listing = files::Listing {
                    stage: None,
                    glob: None,
                    limit: RESOURCES_PAGE,
                    cursor: cursor.as_deref(),
                };
                files::list(&inner.ws, &cfg, &listing)
            })
            .await
            .map_err(|e| McpError::internal_error(e.message, None))?;
        let mut resources = Vec::with_capacity(page.files.len() + 2);
        if first {
            resources.extend(fixed_resources());
        }
        for f in page.files {
            resources.push(
                Resource::new(format!("{}{}", feed::SCHEME, f.path), f.path.clone())
                    .with_mime_type(mime_of(&f.path))
                    .with_size(f.size)
                    .with_description(match &f.author {
                        Some(by) => format!("{} artifact, by {by}", f.stage),
                        None => format!("{} artifact", f.stage),
                    }),
            );
        }
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = page.next_cursor;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.clone();
        let contents = self
            .blocking(move |inner| inner.read_resource(&uri))
            .await
            .map_err(|e| match e.code {
                Code::NotFound
                | Code::OutsideWorkspace
                | Code::InvalidArguments
                | Code::NotAnArtifact => {
                    McpError::resource_not_found(e.message, Some(json!({ "uri": request.uri })))
                }
                _ => McpError::internal_error(e.message, None),
            })?;
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let uris: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| self.inner.subscribable(uri))
            .cloned()
            .collect();
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = Some(uris);
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let wanted: HashSet<String> = context
            .accepted()
            .resource_subscriptions
            .iter()
            .flatten()
            .cloned()
            .collect();
        let sink = context.sink().clone();
        let mut changes = self.inner.feed.subscribe();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = changes.recv() => match change {
                    Ok(entry) => {
                        for uri in feed::changed(&entry).iter().filter(|u| wanted.contains(*u)) {
                            if sink.notify_resource_updated(uri.clone()).await.is_err() {
                                return Ok(()); // the subscription or the connection ended
                            }
                        }
                    }
                    // Fell behind: what was missed is unknown, so everything may have changed.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        for uri in &wanted {
                            if sink.notify_resource_updated(uri.clone()).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if !self.inner.subscribable(&request.uri) {
            return Err(McpError::resource_not_found(
                format!(
                    "{}: no such resource; subscribe to baton://status, baton://journal or baton://<path>",
                    request.uri
                ),
                None,
            ));
        }
        let start = {
            let mut legacy = self.inner.legacy.lock().unwrap_or_else(|e| e.into_inner());
            legacy.uris.insert(request.uri);
            !std::mem::replace(&mut legacy.forwarding, true)
        };
        if start {
            tokio::spawn(forward_legacy(self.inner.clone(), context.peer.clone()));
        }
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let mut legacy = self.inner.legacy.lock().unwrap_or_else(|e| e.into_inner());
        legacy.uris.remove(&request.uri);
        Ok(())
    }
}

/// Tells a 2025-era client of changes to what it subscribed to, until it goes away.
async fn forward_legacy(inner: Arc<Inner>, peer: Peer<RoleServer>) {
    let mut changes = inner.feed.subscribe();
    loop {
        let uris = match changes.recv().await {
            Ok(entry) => feed::changed(&entry),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let legacy = inner.legacy.lock().unwrap_or_else(|e| e.into_inner());
                legacy.uris.iter().cloned().collect()
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let wanted: Vec<String> = {
            let legacy = inner.legacy.lock().unwrap_or_else(|e| e.into_inner());
            uris.into_iter()
                .filter(|u| legacy.uris.contains(u))
                .collect()
        };
        for uri in wanted {
            if peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await
                .is_err()
            {
                return; // the connection is gone
            }
        }
    }
}

/// What a client is told at the handshake: the workspace, who the tools act as, and how
/// to use them well.
fn instructions(ws: &Workspace, cfg: &Config, actor: &Actor, read_only: bool) -> String {
    let writes = match actor {
        Actor::Human => {
            "You act as `human`: write_file publishes at once, in any stage".to_string()
        }
        Actor::Agent(name) => format!(
            "You act as agent `{name}`: write_file publishes at once, attributed to it, in its `writes` stages only"
        ),
        Actor::InTask(t) => format!(
            "You act as agent `{}` in task {}: write_file and delegate are staged and take effect only if the task succeeds",
            t.agent_name(),
            t.task
        ),
    };
    let mode = if read_only {
        " This server is read-only."
    } else {
        ""
    };
    format!(
        "baton workspace {root}: a folder shared by a team of agents, in stages ({stages}). \
         Paths are workspace-relative (drafts/plan.md). Hand work to another agent with \
         `delegate` (by path, never by pasting content). Read a file before changing it and \
         pass its `hash` as write_file's `expected_hash`, so a concurrent change is never \
         overwritten. {writes}.{mode} Subscribe to baton://journal or baton://<path> to be \
         told of changes instead of polling.",
        root = ws.root.display(),
        stages = cfg.stages.join(", "),
    )
}

impl Inner {
    /// Whether `uri` is one this server can tell changes of.
    fn subscribable(&self, uri: &str) -> bool {
        match uri.strip_prefix(feed::SCHEME) {
            Some("status" | "journal") => true,
            Some(path) => RelPath::new(path).is_ok(),
            None => false,
        }
    }

    fn read_resource(&self, uri: &str) -> Result<ResourceContents> {
        let Some(rest) = uri.strip_prefix(feed::SCHEME) else {
            return Err(refuse(
                Code::NotFound,
                format!(
                    "{uri}: not a baton resource (baton://status, baton://journal, baton://<path>)"
                ),
            ));
        };
        match rest {
            "status" => {
                let overview = crate::report::status::overview(&self.ws)?;
                Ok(
                    ResourceContents::text(serde_json::to_string_pretty(&overview)?, uri)
                        .with_mime_type("application/json"),
                )
            }
            "journal" => {
                let entries = crate::journal::follow::recent(&self.ws, feed::JOURNAL_RECENT)?;
                Ok(
                    ResourceContents::text(serde_json::to_string_pretty(&entries)?, uri)
                        .with_mime_type("application/json"),
                )
            }
            path => {
                let rel = self.rel(path)?;
                let text = files::read(&self.ws, self.actor.out(), &rel, 0, files::MAX_PAGE * 4)?;
                match text.content {
                    Some(content) if text.next_offset.is_none() => {
                        Ok(ResourceContents::text(content, uri).with_mime_type(mime_of(path)))
                    }
                    Some(_) => Err(refuse(
                        Code::InvalidArguments,
                        format!(
                            "{rel} is {} bytes, too large to read whole; read it in pages with read_file",
                            text.size
                        ),
                    )),
                    None => {
                        use base64::Engine as _;
                        let opened = crate::beneath::open(&self.ws.root, &rel)?;
                        if opened.size > (files::MAX_PAGE * 4) as u64 {
                            return Err(refuse(
                                Code::InvalidArguments,
                                format!(
                                    "{rel} is a binary file of {} bytes, too large to send",
                                    opened.size
                                ),
                            ));
                        }
                        let blob =
                            base64::engine::general_purpose::STANDARD.encode(opened.bytes()?);
                        Ok(ResourceContents::blob(blob, uri)
                            .with_mime_type("application/octet-stream"))
                    }
                }
            }
        }
    }
}

/// The media type a path's extension suggests.
fn mime_of(path: &str) -> &'static str {
    match Path::new(path).extension().and_then(|e| e.to_str()) {
        Some("md" | "markdown") => "text/markdown",
        Some("json") => "application/json",
        Some("toml") => "application/toml",
        Some("html" | "htm") => "text/html",
        Some("csv") => "text/csv",
        _ => "text/plain",
    }
}

/// `baton://status` and `baton://journal`, which lead the first page of resources.
fn fixed_resources() -> [Resource; 2] {
    [
        Resource::new(feed::STATUS, "status")
            .with_description(
                "What is true now: agents, running, queued, held and dead tasks (as `baton status --json`)",
            )
            .with_mime_type("application/json"),
        Resource::new(feed::JOURNAL, "journal")
            .with_description(
                "The most recent journal entries, oldest first: every artifact version and task event",
            )
            .with_mime_type("application/json"),
    ]
}
