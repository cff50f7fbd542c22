//! The tools of `baton mcp`, exactly these names, each with a description written for a
//! model, an input and an output schema, and all four annotations set (the spec's
//! defaults are the pessimistic ones).

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::files::{self, FileEntry, FileText};
use super::{Desk, ToolError};
use crate::act::{self, Delegation, Written};
use crate::error::{Code, refuse};
use crate::index::search::SearchOptions;

/// The tools that change the workspace: `--read-only` does not register them.
pub(crate) const WRITING: [&str; 2] = ["write_file", "delegate"];

const LIST_DEFAULT: usize = 200;
const LIST_MAX: usize = 2000;
const READ_DEFAULT: usize = 64 * 1024;
const SEARCH_DEFAULT: usize = 10;
const SEARCH_MAX: usize = 200;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListArgs {
    /// Only this stage (one of the workspace's stages, e.g. "drafts").
    #[serde(default)]
    stage: Option<String>,
    /// Only paths matching this glob: `*` stays within a folder, `**` crosses folders,
    /// e.g. "drafts/**/*.md".
    #[serde(default)]
    glob: Option<String>,
    /// At most this many files (1 to 2000; default 200).
    #[serde(default)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page, to get the next one.
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ListOut {
    /// In path order.
    files: Vec<FileEntry>,
    /// Pass it as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadArgs {
    /// Workspace-relative path, e.g. "drafts/plan.md".
    path: String,
    /// Byte offset to start at (default 0): a page's `next_offset`.
    #[serde(default)]
    offset: Option<u64>,
    /// At most this many bytes (1 to 1048576; default 65536).
    #[serde(default)]
    limit: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteArgs {
    /// Workspace-relative path in a stage folder, e.g. "drafts/plan.md".
    path: String,
    /// The whole new content (UTF-8 text).
    content: String,
    /// The `hash` read_file returned for the version this write replaces: the write is
    /// refused (stale_write) if the file changed since. "" means the file must not exist
    /// yet. Omit it only to overwrite whatever is there.
    #[serde(default)]
    expected_hash: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct WriteOut {
    path: String,
    /// `published` (visible now), `unchanged` (it held this content already) or
    /// `staged` (inside a task: published when the task succeeds).
    status: &'static str,
    /// The new content's hash: the `expected_hash` of a write on top of this one.
    hash: String,
    /// Bytes written.
    size: u64,
    /// The hash of the version replaced (kept; `baton restore` brings it back).
    replaced: Option<String>,
    /// The stage holds outputs for a person's `baton approve` before they are published.
    awaits_approval: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchArgs {
    /// Words to find (all must match). Also: "a phrase" in quotes, OR, -word to exclude,
    /// prefix*; `*` alone matches everything (narrow it with stage or author).
    query: String,
    /// Only this stage.
    #[serde(default)]
    stage: Option<String>,
    /// Only files whose latest version this author wrote: an agent, `human` or
    /// `external`.
    #[serde(default)]
    author: Option<String>,
    /// At most this many hits (1 to 200; default 10).
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SearchHit {
    path: String,
    stage: String,
    author: String,
    /// The task whose output it is, if an agent's.
    task: String,
    title: String,
    score: f32,
    /// The best-matching passage.
    snippet: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SearchOut {
    /// Best first.
    hits: Vec<SearchHit>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelegateArgs {
    /// The agent to hand the work to (one of the workspace's agents).
    to: String,
    /// The file to hand over, workspace-relative (inside a task, a file it staged counts).
    path: String,
    /// What the agent should do with it: the brief's body, verbatim.
    #[serde(default)]
    note: Option<String>,
    /// More files the agent should read, workspace-relative.
    #[serde(default)]
    refs: Option<Vec<String>>,
    /// Any string unique to this delegation: repeating the call with the same key returns
    /// the brief made the first time instead of a second one. Use it when retrying.
    #[serde(default)]
    idempotency_key: Option<String>,
    /// Narrow what the agent may write for this task: stages or folders in them (e.g.
    /// "drafts/chapter-1"), within its own writes and yours.
    #[serde(default)]
    writes: Option<Vec<String>>,
    /// When the agent must be done: a duration ("30m") or an RFC 3339 time, never later
    /// than your own task's deadline.
    #[serde(default)]
    deadline: Option<String>,
    /// What the agent and what it delegates may spend (the unit of `cost` in
    /// result.toml), never more than your own chain has left.
    #[serde(default)]
    budget: Option<f64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct DelegateOut {
    /// The brief written; its task's progress: task_status or trace with this path.
    brief: String,
    to: String,
    /// Every path the brief hands over, the subject first.
    refs: Vec<String>,
    /// `published` (dispatched now) or `staged` (inside a task: dispatched when it
    /// succeeds, and this task runs again once the work is settled).
    status: &'static str,
    /// The same idempotency key made this brief before: nothing new was written.
    replayed: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskArgs {
    /// A task id or any unique prefix of it (e.g. "t-3fa9"); omit it for the overview.
    #[serde(default)]
    task: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TaskOut {
    /// The task asked for: id, agent, input, status, attempts, outputs, error, result.
    task: Option<Value>,
    /// Without `task`: agents with their load, running, queued, retrying, held, waiting
    /// and recent dead tasks, rejected inputs.
    overview: Option<Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArgs {}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AgentsOut {
    /// Each agent: name, description, on (the globs that start it), writes,
    /// delegates_to (null: any), concurrency, timeout_ms, retries, fatal_exits, and its
    /// load now (running, queued).
    agents: Value,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraceArgs {
    /// A workspace path, or a task id (any unique prefix).
    path_or_task: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TraceOut {
    target: String,
    /// The tasks the target names.
    focus: Value,
    /// Delegation trees, from their roots: each node has task, agent, status, reason,
    /// duration_ms, reads, writes, error, refused briefs and children.
    trees: Value,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WhoArgs {
    /// Workspace-relative path.
    path: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct WhoOut {
    path: String,
    /// Oldest first: ts, hash, size, by, task, and the chain of tasks that led to it.
    versions: Value,
    /// The hash of what is on disk now (null: no file).
    on_disk: Option<String>,
    /// Whether the journal knows the version on disk (false: edited outside baton).
    on_disk_known: Option<bool>,
}

fn bounded(given: Option<u64>, default: usize, max: usize, what: &str) -> Result<usize, ToolError> {
    match given {
        None => Ok(default),
        Some(n) if n >= 1 && n <= max as u64 => Ok(n as usize),
        Some(n) => Err(ToolError {
            code: Code::InvalidArguments,
            message: format!("{what} {n}: give 1 to {max}"),
        }),
    }
}

#[tool_router(vis = "pub(crate)")]
impl Desk {
    #[tool(
        description = "List the workspace's files (artifacts in its stage folders), with who wrote each and in which task. Paged: pass next_cursor back as cursor.",
        annotations(
            title = "List files",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_files(
        &self,
        Parameters(a): Parameters<ListArgs>,
    ) -> Result<Json<ListOut>, ToolError> {
        let limit = bounded(a.limit.map(u64::from), LIST_DEFAULT, LIST_MAX, "limit")?;
        let glob = match &a.glob {
            Some(g) => Some(
                globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| ToolError {
                        code: Code::InvalidArguments,
                        message: format!("glob {g:?}: {e}"),
                    })?
                    .compile_matcher(),
            ),
            None => None,
        };
        self.blocking(move |inner| {
            let cfg = inner.config();
            let listing = files::Listing {
                stage: a.stage.as_deref(),
                glob,
                limit,
                cursor: a.cursor.as_deref(),
            };
            let page = files::list(&inner.ws, &cfg, &listing)?;
            Ok(Json(ListOut {
                files: page.files,
                next_cursor: page.next_cursor,
            }))
        })
        .await
    }

    #[tool(
        description = "Read a text file of the workspace, a page at a time (next_offset gives the next page), with its content hash: pass the hash as write_file's expected_hash. Binary files are described, not shown. Inside a task, a file it staged reads as staged.",
        annotations(
            title = "Read a file",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn read_file(
        &self,
        Parameters(a): Parameters<ReadArgs>,
    ) -> Result<Json<FileText>, ToolError> {
        let limit = bounded(a.limit, READ_DEFAULT, files::MAX_PAGE, "limit")?;
        self.blocking(move |inner| {
            let rel = inner.rel(&a.path)?;
            Ok(Json(files::read(
                &inner.ws,
                inner.actor.out(),
                &rel,
                a.offset.unwrap_or(0),
                limit,
            )?))
        })
        .await
    }

    #[tool(
        description = "Write a whole text file into a stage folder, atomically and attributed to you. Give expected_hash (from read_file) when changing an existing file: if someone changed it since, nothing is written and you get stale_write, so read it again and redo your change. Earlier versions are kept. Refused outside the stages you may write (outside_scope). Inside a task the write is staged and published only if the task succeeds.",
        annotations(
            title = "Write a file",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn write_file(
        &self,
        Parameters(a): Parameters<WriteArgs>,
    ) -> Result<Json<WriteOut>, ToolError> {
        self.blocking(move |inner| {
            let cfg = inner.config();
            let rel = inner.rel(&a.path)?;
            let written = act::write(
                &inner.ws,
                &cfg,
                &inner.actor,
                &rel,
                &mut a.content.as_bytes(),
                a.expected_hash.as_deref(),
            )?;
            let (status, hash, size, replaced, gated) = match written {
                Written::Published {
                    hash,
                    size,
                    replaced,
                } => ("published", hash, size, replaced, false),
                Written::Unchanged { hash } => {
                    ("unchanged", hash, a.content.len() as u64, None, false)
                }
                Written::Staged { hash, size, gated } => ("staged", hash, size, None, gated),
            };
            Ok(Json(WriteOut {
                path: rel.to_string(),
                status,
                hash,
                size,
                replaced,
                awaits_approval: gated,
            }))
        })
        .await
    }

    #[tool(
        description = "Search the contents of the workspace's files (full text, English stemming), best first, with a snippet each. Narrow by stage or author.",
        annotations(
            title = "Search files",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn search_files(
        &self,
        Parameters(a): Parameters<SearchArgs>,
    ) -> Result<Json<SearchOut>, ToolError> {
        let limit = bounded(a.limit.map(u64::from), SEARCH_DEFAULT, SEARCH_MAX, "limit")?;
        if a.query.trim().is_empty() {
            return Err(ToolError {
                code: Code::BadQuery,
                message: "the query is empty: give the words to look for, or `*` for everything"
                    .into(),
            });
        }
        self.blocking(move |inner| {
            let cfg = inner.config();
            if let Some(stage) = &a.stage {
                if !cfg.stages.iter().any(|s| s.eq_ignore_ascii_case(stage)) {
                    return Err(refuse(
                        Code::NotFound,
                        format!(
                            "stage {stage:?}: no such stage; stages are {}",
                            cfg.stages.join(", ")
                        ),
                    ));
                }
            }
            let store = inner.index()?;
            store.catch_up_for_query(&inner.ws, &cfg)?;
            let opts = SearchOptions {
                stage: a.stage,
                author: a.author,
                limit,
                max_file_size: cfg.max_file_size,
                ..Default::default()
            };
            let hits = crate::index::search::search(&store, &inner.ws, &a.query, &opts)?;
            Ok(Json(SearchOut {
                hits: hits
                    .into_iter()
                    .map(|h| SearchHit {
                        path: h.path,
                        stage: h.stage,
                        author: h.author,
                        task: h.task,
                        title: h.title,
                        score: h.score,
                        snippet: h.snippet,
                    })
                    .collect(),
            }))
        })
        .await
    }

    #[tool(
        description = "Hand a file to another agent: writes a brief pointing at it (by path; never paste content) with your note, which the daemon dispatches to that agent. Give an idempotency_key when you may retry. Inside a task the brief is sent when the task succeeds, and the task runs again once the delegated work is settled.",
        annotations(
            title = "Delegate",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn delegate(
        &self,
        Parameters(a): Parameters<DelegateArgs>,
    ) -> Result<Json<DelegateOut>, ToolError> {
        self.blocking(move |inner| {
            let cfg = inner.config();
            act::delegation_allowed(&cfg, &inner.actor, &a.to)?;
            if a.budget.is_some_and(|b| !b.is_finite() || b < 0.0) {
                return Err(refuse(
                    Code::InvalidArguments,
                    "budget: give a number not below 0",
                ));
            }
            let subject = inner.rel(&a.path)?;
            let refs = a
                .refs
                .iter()
                .flatten()
                .map(|r| inner.rel(r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let done = act::delegate(
                &inner.ws,
                &cfg,
                &inner.actor,
                Delegation {
                    to: &a.to,
                    subject,
                    refs,
                    note: a.note.as_deref(),
                    idempotency_key: a.idempotency_key.as_deref(),
                    writes: a.writes.as_deref().unwrap_or_default(),
                    deadline: a.deadline.as_deref(),
                    budget: a.budget,
                },
            )?;
            Ok(Json(DelegateOut {
                brief: done.brief.to_string(),
                to: a.to,
                refs: done.refs.iter().map(ToString::to_string).collect(),
                status: if done.staged { "staged" } else { "published" },
                replayed: done.replayed,
            }))
        })
        .await
    }

    #[tool(
        description = "One task's state (give its id or a unique prefix: agent, input, status, attempts, outputs, error) or, without a task, the overview of the team: agents, running, queued, held, dead.",
        annotations(
            title = "Task status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn task_status(
        &self,
        Parameters(a): Parameters<TaskArgs>,
    ) -> Result<Json<TaskOut>, ToolError> {
        self.blocking(move |inner| {
            Ok(Json(match a.task {
                Some(prefix) => {
                    let store = crate::store::Store::open(&inner.ws)?;
                    let task = store.find_task(&prefix)?;
                    TaskOut {
                        task: Some(serde_json::to_value(task)?),
                        overview: None,
                    }
                }
                None => TaskOut {
                    task: None,
                    overview: Some(crate::report::status::overview(&inner.ws)?),
                },
            }))
        })
        .await
    }

    #[tool(
        description = "The team's agents: what each is for (description), what starts it, the stages it writes, whom it may delegate to, its limits and how busy it is now. Use it to choose whom to delegate to.",
        annotations(
            title = "List agents",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_agents(
        &self,
        Parameters(_): Parameters<NoArgs>,
    ) -> Result<Json<AgentsOut>, ToolError> {
        self.blocking(move |inner| {
            let agents = crate::report::status::with_report(&inner.ws, |report, _| {
                Ok(serde_json::to_value(&report.agents)?)
            })?;
            Ok(Json(AgentsOut { agents }))
        })
        .await
    }

    #[tool(
        description = "The delegation tree around a file or a task, from the journal: which agent did what for whom, each task's status, duration, reads and writes.",
        annotations(
            title = "Trace",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn trace(
        &self,
        Parameters(a): Parameters<TraceArgs>,
    ) -> Result<Json<TraceOut>, ToolError> {
        self.blocking(move |inner| {
            let target = match inner.rel(&a.path_or_task) {
                Ok(rel) => rel.to_string(),
                Err(_) => a.path_or_task.clone(),
            };
            let doc = crate::report::trace::doc(&inner.ws, &target)?;
            Ok(Json(TraceOut {
                target: a.path_or_task,
                focus: doc["focus"].clone(),
                trees: doc["trees"].clone(),
            }))
        })
        .await
    }

    #[tool(
        description = "Who wrote each version of a file, in which task, and the chain of delegations that led to it; whether the file on disk is a version the journal knows.",
        annotations(
            title = "Who wrote",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn who_wrote(
        &self,
        Parameters(a): Parameters<WhoArgs>,
    ) -> Result<Json<WhoOut>, ToolError> {
        self.blocking(move |inner| {
            let rel = inner.rel(&a.path)?;
            let doc = crate::report::who::doc(&inner.ws, &rel)?;
            let versions = doc["versions"].clone();
            let on_disk = doc["on_disk"].as_str().map(str::to_string);
            if versions.as_array().is_none_or(Vec::is_empty) && on_disk.is_none() {
                return Err(refuse(
                    Code::NotFound,
                    format!("{rel}: the journal has no record of it, and there is no such file"),
                ));
            }
            Ok(Json(WhoOut {
                path: rel.to_string(),
                versions,
                on_disk,
                on_disk_known: doc["on_disk_known"].as_bool(),
            }))
        })
        .await
    }
}
