//! The page's reads: its assets, and JSON for each view, from the journal and the state
//! store (the same reports `baton status`, `trace` and `who` print).

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Result;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{App, Failure, blocking, render};
use crate::error::{Code, refuse};
use crate::journal::segments::ReverseLines;
use crate::journal::{Author, Entry, History, Record, TaskInfo, TaskStatus};
use crate::store::Store;
use crate::workspace::{RelPath, Workspace};

#[derive(rust_embed::Embed)]
#[folder = "src/ui/assets/"]
struct Assets;

pub(super) async fn index() -> Response {
    asset_response("index.html")
}

pub(super) async fn asset(Path(path): Path<String>) -> Response {
    asset_response(&path)
}

pub(super) async fn icon() -> Response {
    asset_response("icon.svg")
}

fn asset_response(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let kind = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

/// The now view: agents with their load, what runs, what waits, what went wrong (as
/// `baton status --json`), and the journal's last `seq`, to follow from.
pub(super) async fn now(State(app): State<App>) -> Result<Json<Value>, Failure> {
    blocking(move || {
        let mut doc = crate::report::status::overview(&app.ws)?;
        doc["last_seq"] = json!(last_seq(&app.ws)?);
        doc["now"] = json!(crate::journal::now_rfc3339());
        Ok(Json(doc))
    })
    .await
}

fn last_seq(ws: &Workspace) -> Result<u64> {
    Ok(crate::journal::follow::recent(ws, 1)?
        .first()
        .map_or(0, |e| e.seq))
}

#[derive(Deserialize, Default)]
pub(super) struct FeedQuery {
    /// Only what was journalled before this `seq` (the page before); default: the end.
    before: Option<u64>,
    limit: Option<usize>,
    agent: Option<String>,
    stage: Option<String>,
    /// Only what failed: dead, failed, escalated tasks, rejections.
    #[serde(default)]
    failed: bool,
    q: Option<String>,
}

/// Rows a feed page holds at most.
const FEED_MAX: usize = 200;
/// Journal lines one feed request reads at most: the page says where it stopped, so a
/// narrow filter over a long history pages on instead of reading it all at once.
const FEED_SCAN: usize = 20_000;

/// The activity feed, newest first, a page at a time: one row per task (its queued,
/// started and finished records folded together, from the state store), and one per
/// file a person or an outside writer dropped, and per rejection.
pub(super) async fn feed(
    State(app): State<App>,
    Query(q): Query<FeedQuery>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        let limit = q.limit.unwrap_or(50).clamp(1, FEED_MAX);
        let store = Store::open(&app.ws)?;
        let dir = app.ws.journal_dir();
        let end = crate::journal::segments::end(&dir)?;
        let mut rows = Vec::new();
        let mut seen = HashSet::new();
        let mut oldest: Option<u64> = None;
        let mut last_seq = None;
        let mut scanned = 0;
        let mut exhausted = true;
        for line in ReverseLines::new(&dir, end)? {
            let Ok(entry) = serde_json::from_slice::<Entry>(&line?) else {
                continue;
            };
            last_seq.get_or_insert(entry.seq);
            if q.before.is_some_and(|b| entry.seq >= b) {
                continue;
            }
            if rows.len() >= limit || scanned >= FEED_SCAN {
                exhausted = false;
                break;
            }
            scanned += 1;
            oldest = Some(entry.seq);
            if let Some(row) = row_of(&store, &entry, &mut seen)? {
                if matches(&row, &q) {
                    rows.push(row);
                }
            }
        }
        Ok(Json(json!({
            "rows": rows,
            "next_before": if exhausted { None } else { oldest },
            "last_seq": last_seq.unwrap_or(0),
        })))
    })
    .await
}

/// The feed row an entry stands for, if it is the first of its task this page met.
fn row_of(store: &Store, entry: &Entry, seen: &mut HashSet<String>) -> Result<Option<Value>> {
    Ok(match &entry.record {
        Record::Artifact { path, by, .. } if !matches!(by, Author::Agent(_)) => Some(json!({
            "kind": "artifact",
            "seq": entry.seq,
            "ts": entry.ts,
            "path": path,
            "by": by,
        })),
        Record::Rejected { path, error, .. } => Some(json!({
            "kind": "rejected",
            "seq": entry.seq,
            "ts": entry.ts,
            "path": path,
            "error": error,
        })),
        record => match record.task() {
            Some(id) if seen.insert(id.to_string()) => {
                store.task(id)?.map(|t| task_row(&t, entry.seq))
            }
            _ => None,
        },
    })
}

/// A task as the feed shows it.
pub(super) fn task_row(t: &TaskInfo, seq: u64) -> Value {
    json!({
        "kind": "task",
        "seq": seq,
        "ts": t.updated_ts,
        "queued_ts": t.queued_ts,
        "task": t.id,
        "agent": t.agent,
        "input": t.input,
        "reason": t.reason,
        "parent": t.parent,
        "status": t.status,
        "attempt": t.attempt,
        "error": t.error,
        "outputs": t.outputs.iter().map(|o| &o.path).collect::<Vec<_>>(),
        "duration_ms": t.duration_ms,
        "cost": t.cost,
        "deadline": t.deadline,
    })
}

fn matches(row: &Value, q: &FeedQuery) -> bool {
    let s = |k: &str| row[k].as_str().unwrap_or_default();
    let paths: Vec<&str> = [s("input"), s("path")]
        .into_iter()
        .chain(
            row["outputs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        )
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(agent) = q.agent.as_deref().filter(|a| !a.is_empty()) {
        if s("agent") != agent && s("by") != agent {
            return false;
        }
    }
    if let Some(stage) = q.stage.as_deref().filter(|a| !a.is_empty()) {
        if !paths.iter().any(|p| p.split('/').next() == Some(stage)) {
            return false;
        }
    }
    if q.failed
        && !(s("kind") == "rejected" || matches!(s("status"), "dead" | "failed" | "escalated"))
    {
        return false;
    }
    if let Some(text) = q.q.as_deref().filter(|t| !t.trim().is_empty()) {
        let text = text.trim().to_lowercase();
        let hay = [s("task"), s("agent"), s("error"), s("by")]
            .into_iter()
            .chain(paths.iter().copied())
            .any(|h| h.to_lowercase().contains(&text));
        if !hay {
            return false;
        }
    }
    true
}

/// One task: its state, its delegation tree (as `baton trace --json`), and its last
/// attempt's `task.json` and result.
pub(super) async fn task(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        let store = Store::open(&app.ws)?;
        let t = store.find_task(&id)?;
        let trace = crate::report::trace::doc(&app.ws, t.id.as_str())?;
        let task_json = (t.attempt > 0)
            .then(|| {
                app.ws
                    .attempt_dir(t.id.as_str(), t.attempt)
                    .join("task.json")
            })
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        let mut row = task_row(&t, 0);
        row["refs"] = json!(t.refs);
        row["writes"] = json!(t.writes);
        row["budget"] = json!(t.budget);
        row["result"] = json!(t.result);
        row["started_ts"] = json!(t.started_ts);
        Ok(Json(json!({
            "task": row,
            "trace": trace,
            "task_json": task_json,
            "actions": actions(&t),
        })))
    })
    .await
}

/// What a person may do to a task in its state, as the buttons the page shows.
fn actions(t: &TaskInfo) -> Vec<&'static str> {
    match t.status {
        TaskStatus::Held => vec!["approve", "reject"],
        TaskStatus::Queued | TaskStatus::Failed | TaskStatus::Running => vec!["cancel"],
        TaskStatus::Escalated => vec!["retry", "cancel"],
        TaskStatus::Done | TaskStatus::Dead => vec!["retry"],
        TaskStatus::Committing => vec![],
    }
}

#[derive(Deserialize)]
pub(super) struct LogsQuery {
    attempt: Option<u32>,
    /// `stdout` or `stderr` (default).
    stream: Option<String>,
    /// Read from this byte on (what the page has already); default: the last 64 KiB.
    from: Option<u64>,
}

/// Bytes of a log one request returns at most.
const LOG_PAGE: u64 = 64 << 10;

/// An attempt's log, from a byte on (so a page polling a running task gets what is
/// new), or its tail.
pub(super) async fn logs(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let store = Store::open(&app.ws)?;
        let t = store.find_task(&id)?;
        let attempt = q.attempt.unwrap_or(t.attempt);
        let stream = match q.stream.as_deref() {
            None | Some("stderr") => "stderr.log",
            Some("stdout") => "stdout.log",
            Some(other) => {
                return Err(refuse(
                    Code::InvalidArguments,
                    format!("stream {other:?}: expected stdout or stderr"),
                ));
            }
        };
        let file: PathBuf = app.ws.attempt_dir(t.id.as_str(), attempt).join(stream);
        let (text, end) = match std::fs::File::open(&file) {
            Ok(mut f) => {
                let len = f.metadata()?.len();
                let from = q.from.unwrap_or(len.saturating_sub(LOG_PAGE)).min(len);
                f.seek(SeekFrom::Start(from))?;
                let mut bytes = Vec::new();
                f.take(LOG_PAGE).read_to_end(&mut bytes)?;
                let end = from + bytes.len() as u64;
                (String::from_utf8_lossy(&bytes).into_owned(), end)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), 0),
            Err(e) => return Err(e.into()),
        };
        Ok(Json(json!({
            "task": t.id,
            "attempt": attempt,
            "attempts": t.attempt,
            "stream": stream.trim_end_matches(".log"),
            "text": text,
            "next": end,
            "running": t.status == TaskStatus::Running,
        })))
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct ArtifactQuery {
    path: String,
    /// A version's content hash (any unique prefix); default: the current file.
    version: Option<String>,
}

/// Text shown at most; a longer file is cut (and says so).
const SHOWN_MAX: usize = 1 << 20;

/// An artifact: a version's content (Markdown rendered, sanitized), and who wrote
/// each version (as `baton who --json`).
pub(super) async fn artifact(
    State(app): State<App>,
    Query(q): Query<ArtifactQuery>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        let rel = workspace_path(&q.path)?;
        let who = crate::report::who::doc(&app.ws, &rel)?;
        let hash = match &q.version {
            Some(v) => Some(version_hash(&who, v)?),
            None => None,
        };
        let content = content_of(&app.ws, &rel, hash.as_deref())?;
        let mut doc = json!({ "path": rel, "who": who, "version": hash });
        match content {
            None => doc["missing"] = json!(true),
            Some(bytes) if crate::text::looks_binary(&bytes) => {
                doc["binary"] = json!(true);
                doc["size"] = json!(bytes.len());
            }
            Some(bytes) => {
                let cut = bytes.len() > SHOWN_MAX;
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN_MAX)]);
                if rel.as_str().ends_with(".md") {
                    doc["html"] = json!(render::markdown(&text));
                }
                doc["text"] = json!(text);
                doc["cut"] = json!(cut);
            }
        }
        Ok(Json(doc))
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct DiffQuery {
    path: String,
    from: String,
    /// Default: the current file.
    to: Option<String>,
}

/// The line diff between two versions of an artifact.
pub(super) async fn diff(
    State(app): State<App>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        let rel = workspace_path(&q.path)?;
        let who = crate::report::who::doc(&app.ws, &rel)?;
        let from = version_hash(&who, &q.from)?;
        let to = match &q.to {
            Some(v) => Some(version_hash(&who, v)?),
            None => None,
        };
        let gone = |which: &str| {
            refuse(
                Code::NotFound,
                format!("the content of version {which} of {rel} is not kept"),
            )
        };
        let old = content_of(&app.ws, &rel, Some(&from))?.ok_or_else(|| gone(&from))?;
        let new = content_of(&app.ws, &rel, to.as_deref())?
            .ok_or_else(|| gone(to.as_deref().unwrap_or("on disk")))?;
        Ok(Json(json!({
            "path": rel,
            "from": from,
            "to": to,
            "lines": render::diff(
                &String::from_utf8_lossy(&old[..old.len().min(SHOWN_MAX)]),
                &String::from_utf8_lossy(&new[..new.len().min(SHOWN_MAX)]),
            ),
        })))
    })
    .await
}

fn workspace_path(given: &str) -> Result<RelPath> {
    RelPath::new(given.trim_start_matches('/'))
        .map_err(|e| refuse(Code::OutsideWorkspace, format!("{given}: {e:#}")))
}

/// The full hash of the version `prefix` names, among those `who` lists.
fn version_hash(who: &Value, prefix: &str) -> Result<String> {
    let found: Vec<&str> = who["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["hash"].as_str())
        .filter(|h| !prefix.is_empty() && h.starts_with(prefix))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    match found[..] {
        [one] => Ok(one.to_string()),
        [] => Err(refuse(
            Code::NotFound,
            format!("no version {prefix} of {} in the journal", who["path"]),
        )),
        _ => Err(refuse(
            Code::InvalidArguments,
            format!("version {prefix} is ambiguous: give more of its hash"),
        )),
    }
}

/// The bytes of version `hash` of `rel` (the current file when `None`): the file if it
/// holds it, else the copy kept in `objects/`; `None` if neither is at hand. The file is
/// opened beneath the workspace root, never through a symlink, as `baton read` opens it.
fn content_of(ws: &Workspace, rel: &RelPath, hash: Option<&str>) -> Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let read = |opened: std::io::Result<crate::beneath::Opened>| -> Result<Option<Vec<u8>>> {
        match opened {
            Ok(opened) => {
                let mut bytes = Vec::new();
                opened
                    .reader()
                    .take(SHOWN_MAX as u64 + 1)
                    .read_to_end(&mut bytes)?;
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Err(refuse(
                Code::NotAnArtifact,
                format!("{rel}: {e}; nothing was read"),
            )),
            Err(e) => Err(e.into()),
        }
    };
    let Some(hash) = hash else {
        return read(crate::beneath::open(&ws.root, rel));
    };
    let current = match crate::beneath::open(&ws.root, rel) {
        Ok(opened) => crate::publish::hash_reader(&mut opened.reader())
            .ok()
            .filter(|(h, _)| h == hash)
            .map(|_| opened),
        Err(_) => None,
    };
    if let Some(opened) = current {
        use std::io::Seek as _;
        (&opened.file).rewind()?; // hashing read it to its end
        return read(Ok(opened));
    }
    if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    read(crate::beneath::open_path(
        &ws.objects_dir().join(hash),
        false,
    ))
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    q: String,
    stage: Option<String>,
    author: Option<String>,
    limit: Option<usize>,
}

/// The workspace search, with snippets (as `baton search --json`).
pub(super) async fn search(
    State(app): State<App>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        if q.q.trim().is_empty() {
            return Err(refuse(
                Code::BadQuery,
                "the query is empty: give the words to look for, or `*` for everything",
            ));
        }
        let cfg = crate::config::Config::load(&app.ws)?;
        let store = app.index()?;
        store.catch_up_for_query(&app.ws, &cfg)?;
        let opts = crate::index::search::SearchOptions {
            stage: q.stage.filter(|s| !s.is_empty()),
            author: q.author.filter(|s| !s.is_empty()),
            limit: q.limit.unwrap_or(20).clamp(1, 100),
            max_file_size: cfg.max_file_size,
            ..Default::default()
        };
        let hits = crate::index::search::search(&store, &app.ws, &q.q, &opts)?;
        Ok(Json(json!({ "hits": hits })))
    })
    .await
}
