//! Settling an attempt: commit a successful agent's outputs atomically (DESIGN §4.4), or
//! record a failure with its retry or death.
//!
//! A commit journals its intent (`task.committing`, fsynced) before the first rename, so
//! a crash mid-commit is rolled forward on restart: either the old or the new file is
//! at each path, never a part, and the outputs appear once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Ctx;
use super::ingest::{read_front_matter, routing};
use crate::config::Agent;
use crate::frontmatter::{FrontMatter, FrontMatterError};
use crate::index::writer::IndexOp;
use crate::journal::{Output, Record, Status, TaskInfo};
use crate::lock::{self, Mode, PathLock};
use crate::publish;
use crate::workspace::RelPath;

/// The name of the optional summary an agent leaves at the root of `$BATON_OUT`.
pub const RESULT_FILE: &str = "result.toml";

/// An output in the staging tree, bound for `path`.
struct Staged {
    path: RelPath,
    file: PathBuf,
    hash: String,
    size: u64,
    front: Result<Option<FrontMatter>, FrontMatterError>,
}

/// Whether an output with front matter `front` is a brief that task `task` delegated.
fn is_delegation(front: &Result<Option<FrontMatter>, FrontMatterError>, task: &str) -> bool {
    matches!(front, Ok(Some(f)) if f.reply_to.as_deref() == Some(task) && f.to.is_some())
}

/// Commits (or holds) the outputs of a successful attempt. A scope violation fails the
/// attempt instead, committing nothing.
pub fn settle_success(
    ctx: &Ctx,
    task: &TaskInfo,
    attempt: u32,
    duration_ms: u64,
) -> Result<Status> {
    let agent = &ctx.cfg.agents[&task.agent];
    let out = ctx.ws.attempt_dir(&task.id, attempt).join("out");
    let staged = match collect_outputs(ctx, agent, &task.id, &out) {
        Ok(staged) => staged,
        Err(violation) => {
            let error = format!("scope violation: {violation}; nothing was committed");
            return settle_failure(ctx, task, attempt, Some(0), error, duration_ms);
        }
    };
    let result = read_result(&out.join(RESULT_FILE));
    let outputs: Vec<Output> = staged
        .iter()
        .map(|s| Output {
            path: s.path.clone(),
            hash: s.hash.clone(),
        })
        .collect();
    let delegated: Vec<RelPath> = staged
        .iter()
        .filter(|s| is_delegation(&s.front, &task.id))
        .map(|s| s.path.clone())
        .collect();

    let finished = |status| Record::Finished {
        task: task.id.clone(),
        attempt,
        status,
        exit: Some(0),
        duration_ms,
        outputs: outputs.clone(),
        error: None,
        result: result.clone(),
        retry_in_ms: None,
        delegated: delegated.clone(),
    };
    if staged
        .iter()
        .any(|s| ctx.cfg.needs_approval(s.path.first()))
    {
        ctx.append(vec![finished(Status::Held)], true)?;
        tracing::info!(
            "{} held {}: outputs wait for `baton approve {}`",
            task.agent,
            task.id,
            task.id
        );
        return Ok(Status::Held);
    }
    if staged.is_empty() {
        // Nothing to commit: if this record is lost with the page cache, the task
        // runs once more, which changes nothing.
        ctx.append(vec![finished(Status::Done)], false)?;
        tracing::info!(
            "{} done {} in {duration_ms} ms, no outputs",
            task.agent,
            task.id
        );
        return Ok(Status::Done);
    }

    let _locks = lock_all(ctx, staged.iter().map(|s| &s.path))?;
    let intent = Record::Committing {
        task: task.id.clone(),
        attempt,
        outputs: outputs.clone(),
    };
    ctx.append(vec![intent], true)?;
    let mut dirs = BTreeSet::new();
    for s in &staged {
        dirs.extend(publish::replace(&ctx.ws, &s.file, &s.path)?);
    }
    publish::sync_dirs(&dirs)?;
    let mut records: Vec<Record> = staged
        .iter()
        .map(|s| Record::Artifact {
            path: s.path.clone(),
            hash: s.hash.clone(),
            size: s.size,
            by: task.agent.clone(),
            task: Some(task.id.clone()),
        })
        .collect();
    records.push(finished(Status::Done));
    let paths: Vec<String> = staged.iter().map(|s| s.path.to_string()).collect();
    let arrivals = staged
        .into_iter()
        .map(|s| (s.path, s.hash, s.front))
        .collect();
    journal_commit(ctx, records, &task.id, arrivals)?;
    tracing::info!(
        "{} done {} in {duration_ms} ms → {}",
        task.agent,
        task.id,
        paths.join(", ")
    );
    Ok(Status::Done)
}

/// An output to route once committed: path, hash, front matter.
type Arrival = (
    RelPath,
    String,
    Result<Option<FrontMatter>, FrontMatterError>,
);

/// Journals a commit and routes its outputs in one critical section, then makes it
/// durable: a commit is acknowledged only once it is on disk.
fn journal_commit(
    ctx: &Ctx,
    records: Vec<Record>,
    task: &str,
    arrivals: Vec<Arrival>,
) -> Result<()> {
    let paths: Vec<RelPath> = arrivals.iter().map(|(path, _, _)| path.clone()).collect();
    let syncer = {
        let mut ledger = ctx.ledger();
        ledger.append(records)?;
        // One append per output, so each routing sees the tasks the ones before it
        // started (max_children).
        for (path, hash, front) in arrivals {
            let routed = routing(&ledger, ctx, &path, &hash, Some(task), front);
            ledger.append(routed)?;
        }
        ledger.syncer()
    };
    syncer.sync()?;
    for path in paths {
        ctx.index.send(IndexOp::Upsert(path));
    }
    Ok(())
}

/// Records a failed attempt: `failed` with the backoff before the next one, or `dead`
/// once the agent's retries are spent. The staging tree and logs stay.
pub fn settle_failure(
    ctx: &Ctx,
    task: &TaskInfo,
    attempt: u32,
    exit: Option<i32>,
    error: String,
    duration_ms: u64,
) -> Result<Status> {
    let agent = &ctx.cfg.agents[&task.agent];
    let failures = task.failures + 1;
    let (status, retry_in_ms) = if failures > agent.retries {
        (Status::Dead, None)
    } else {
        (
            Status::Failed,
            Some(agent.backoff_for(failures).as_millis() as u64),
        )
    };
    let error = match status {
        Status::Dead => format!(
            "{error} (attempt {attempt}; {} retries spent)",
            agent.retries
        ),
        _ => error,
    };
    let error_text = error.clone();
    let record = Record::Finished {
        task: task.id.clone(),
        attempt,
        status,
        exit,
        duration_ms,
        outputs: Vec::new(),
        error: Some(error),
        result: None,
        retry_in_ms,
        delegated: Vec::new(),
    };
    match retry_in_ms {
        Some(ms) => tracing::warn!(
            "{} failed {} (attempt {attempt}): {error_text}; next attempt in {ms} ms",
            task.agent,
            task.id
        ),
        None => tracing::warn!("{} dead {}: {error_text}", task.agent, task.id),
    }
    ctx.append(vec![record], false)?;
    Ok(status)
}

/// Finishes a commit that a crash interrupted after its intent was journalled. Returns
/// false when the staged files are gone and the paths do not hold them either: the task
/// must run again.
pub fn roll_forward(ctx: &Ctx, task: &TaskInfo) -> Result<bool> {
    let out = ctx.ws.attempt_dir(&task.id, task.attempt).join("out");
    let _locks = lock_all(ctx, task.outputs.iter().map(|o| &o.path))?;
    let mut dirs = BTreeSet::new();
    let mut sizes = Vec::new();
    for output in &task.outputs {
        let target = ctx.ws.abs(&output.path);
        let staged = out.join(output.path.as_str());
        let on_disk = publish::hash_file(&target).ok();
        if on_disk.as_ref().is_some_and(|(h, _)| *h == output.hash) {
            sizes.push(on_disk.map_or(0, |(_, s)| s));
            continue; // renamed before the crash
        }
        match publish::hash_file(&staged) {
            Ok((hash, size)) if hash == output.hash => {
                dirs.extend(publish::replace(&ctx.ws, &staged, &output.path)?);
                sizes.push(size);
            }
            _ => return Ok(false),
        }
    }
    publish::sync_dirs(&dirs)?;
    let mut records: Vec<Record> = task
        .outputs
        .iter()
        .zip(&sizes)
        .map(|(o, size)| Record::Artifact {
            path: o.path.clone(),
            hash: o.hash.clone(),
            size: *size,
            by: task.agent.clone(),
            task: Some(task.id.clone()),
        })
        .collect();
    let arrivals: Vec<Arrival> = task
        .outputs
        .iter()
        .map(|o| {
            (
                o.path.clone(),
                o.hash.clone(),
                read_front_matter(&ctx.ws.abs(&o.path)),
            )
        })
        .collect();
    records.push(Record::Finished {
        task: task.id.clone(),
        attempt: task.attempt,
        status: Status::Done,
        exit: Some(0),
        duration_ms: task.duration_ms.unwrap_or(0),
        outputs: task.outputs.clone(),
        error: None,
        result: task.result.clone(),
        retry_in_ms: None,
        delegated: arrivals
            .iter()
            .filter(|(_, _, front)| is_delegation(front, &task.id))
            .map(|(path, _, _)| path.clone())
            .collect(),
    });
    journal_commit(ctx, records, &task.id, arrivals)?;
    tracing::info!(task = %task.id, "finished a commit interrupted by a crash");
    Ok(true)
}

/// Exclusive locks on every path, taken in sorted order so two committers never
/// deadlock.
fn lock_all<'a>(ctx: &Ctx, paths: impl Iterator<Item = &'a RelPath>) -> Result<Vec<PathLock>> {
    let sorted: BTreeSet<&RelPath> = paths.collect();
    sorted
        .into_iter()
        .map(|p| lock::lock(&ctx.ws, p, Mode::Exclusive))
        .collect()
}

/// The staged outputs, hashed and synced, or the first reason they may not be
/// committed. Hidden and scratch files in the staging tree are ignored.
fn collect_outputs(
    ctx: &Ctx,
    agent: &Agent,
    task: &str,
    out: &Path,
) -> Result<Vec<Staged>, String> {
    let mut staged = Vec::new();
    for entry in walkdir::WalkDir::new(out)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| format!("cannot read the staging tree: {e}"))?;
        let rel = entry.path().strip_prefix(out).map_err(|e| e.to_string())?;
        if entry.file_type().is_dir() || rel == Path::new(RESULT_FILE) {
            continue;
        }
        let shown = rel.display();
        let path = RelPath::from_path(rel).map_err(|e| format!("`{shown}`: {e}"))?;
        if path.is_ignored() {
            continue;
        }
        if !entry.file_type().is_file() {
            return Err(format!(
                "`{path}` is not a regular file (symlinks are never committed)"
            ));
        }
        if !ctx.cfg.is_artifact(&path) {
            return Err(format!(
                "`{path}` is not inside a stage (stages: {})",
                ctx.cfg.stages.join(", ")
            ));
        }
        let file = entry.into_path();
        // A brief this task delegated (`baton delegate`, into the first stage) is
        // governed by `delegates_to`, checked when it is routed, not by `writes`.
        let front = read_front_matter(&file);
        let delegation = is_delegation(&front, task) && path.first() == ctx.cfg.stages[0];
        if !agent.may_write(&path) && !delegation {
            return Err(format!(
                "`{path}` is in stage `{}`, which agent `{}` may not write (writes = [{}])",
                path.first(),
                agent.name,
                agent.writes.join(", ")
            ));
        }
        let (hash, size) = publish::hash_file(&file).map_err(|e| format!("`{path}`: {e}"))?;
        publish::fsync_file(&file).map_err(|e| e.to_string())?;
        staged.push(Staged {
            path,
            file,
            hash,
            size,
            front,
        });
    }
    Ok(staged)
}

/// `result.toml` as JSON for the journal; an unreadable one is reported inside it.
fn read_result(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(match toml::from_str::<toml::Table>(&text) {
        Ok(table) => serde_json::to_value(table).unwrap_or(serde_json::Value::Null),
        Err(e) => serde_json::json!({ "error": format!("{RESULT_FILE}: {}", e.message()) }),
    })
}
