//! Artifacts arriving in a stage (DESIGN §4.1–4.2): each checked complete, hashed under
//! its path's shared lock, attributed from the journal, and routed. A walk lists a
//! folder (or every stage) and ingests what is there: that is how the daemon reconciles
//! the stages with the journal at start, after lost events and when a folder appears.
//!
//! Blocking (hashing, locks, walks): runs on tokio's blocking pool, a batch of jobs per
//! worker.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::context::Ctx;
use super::watcher::Watches;
use crate::config::Config;
use crate::frontmatter::{self, HEAD_BYTES};
use crate::index::store::FileRead;
use crate::index::writer::IndexOp;
use crate::journal::{Attribution, History, Record};
use crate::lock;
use crate::route::{self, Version};
use crate::store::{Seen, SeenCheck, Stat};
use crate::workspace::RelPath;

/// Work for an ingest worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum IngestJob {
    /// One artifact that is ready.
    Path(RelPath),
    /// Walk a folder (`None`: every stage) and ingest what is there.
    Walk(Option<RelPath>),
}

/// Files this small are handed to the index as read, so it does not read them again.
const INDEX_WHAT_WAS_READ: u64 = 16 * 1024;

/// What became of an arrival.
enum Ingested {
    /// Journalled and routed (`Journalled::Yes`: records were appended), or known;
    /// with the file as read, if it is small.
    Handled(Journalled, Option<Box<FileRead>>),
    /// A process still holds it open for writing: look again after the settle time.
    Busy,
    /// A folder: walk it.
    Folder,
    /// Gone, or not a regular file: nothing to do.
    Nothing,
}

#[derive(PartialEq)]
enum Journalled {
    Yes,
    /// A version the journal knew, already routed.
    No,
}

/// Whether the index is to hear of a path an ingest found.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TellIndex {
    Yes,
    /// Found by a walk of every stage, which comes with a full catch-up of the index (at
    /// start, after lost events): an op per file on top would flood the index's queue.
    No,
}

/// Ingests a batch of jobs; returns the paths still being written. `progress` is called
/// whenever something was journalled (tasks may have been queued).
pub(crate) fn ingest_batch(ctx: &Ctx, batch: Vec<IngestJob>, progress: impl Fn()) -> Vec<RelPath> {
    let setup = ctx.setup();
    let cfg = &setup.cfg;
    let mut busy = Vec::new();
    let mut seen = Vec::new();
    let pooled = ctx
        .seen_checks
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .pop();
    let mut check = match pooled {
        Some(check) => Some(check),
        None => SeenCheck::open(&ctx.ws)
            .inspect_err(|e| tracing::warn!("every file is read: the state store: {e:#}"))
            .ok(),
    };
    let mut paths: VecDeque<(RelPath, TellIndex)> = VecDeque::new();
    for job in batch {
        match job {
            IngestJob::Path(p) => paths.push_back((p, TellIndex::Yes)),
            IngestJob::Walk(dir) => {
                let tell = if dir.is_some() {
                    TellIndex::Yes
                } else {
                    TellIndex::No
                };
                let listed = list(ctx, cfg, dir.as_ref(), check.as_mut());
                paths.extend(listed.into_iter().map(|p| (p, tell)));
            }
        }
    }
    while let Some((path, tell)) = paths.pop_front() {
        tracing::debug!(%path, "ingesting");
        match ingest(ctx, cfg, &setup.hash, &path, check.as_mut(), &mut seen) {
            Ok(Ingested::Handled(journalled, read)) => {
                if tell == TellIndex::Yes {
                    ctx.index.send(IndexOp::Upsert(path.clone(), read));
                }
                if journalled == Journalled::Yes {
                    progress();
                }
            }
            Ok(Ingested::Busy) => busy.push(path),
            Ok(Ingested::Folder) => {
                // Renamed in, most likely: the walk watches each of its folders before
                // it lists it, so nothing put in it meanwhile is missed.
                let found = list(ctx, cfg, Some(&path), None);
                paths.extend(found.into_iter().map(|p| (p, TellIndex::Yes)));
            }
            Ok(Ingested::Nothing) => {}
            Err(e) => tracing::warn!(path = %path, "could not ingest: {e:#}"),
        }
    }
    if let Some(mut check) = check {
        if check.end_transaction().is_ok() {
            ctx.seen_checks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(check);
        }
    }
    if let Err(e) = ctx.ledger.lock().store().record_seen(&seen) {
        tracing::warn!("recording the files seen: {e:#}; the next start hashes them again");
    }
    busy
}

/// Journals, once, that a symlink, FIFO, socket or device under an artifact's name is
/// left alone: a person looking at the journal or `status` learns why nothing ran.
fn reject_special(ctx: &Ctx, path: &RelPath, meta: &std::fs::Metadata) -> Result<()> {
    let error = format!(
        "`{path}` is {}, not a regular file: only regular files are artifacts, and baton leaves it alone",
        crate::beneath::describe(meta)
    );
    let mut ledger = ctx.ledger.lock();
    ledger.refresh()?;
    if ledger.rejection(path, "")?.as_deref() == Some(error.as_str()) {
        return Ok(());
    }
    tracing::warn!(%path, "{error}");
    ledger.append(vec![Record::Rejected {
        path: path.clone(),
        hash: None,
        error,
    }])?;
    Ok(())
}

/// Journals, once, that a file whose name is no workspace path (not UTF-8, a control
/// character, a backslash) is left alone. Its record names it by a stand-in path, each
/// offending character replaced by U+FFFD; the error shows the name escaped.
fn reject_bad_name(ctx: &Ctx, cfg: &Config, rel: &Path, why: &anyhow::Error) -> Result<()> {
    let Some(path) = RelPath::stand_in(rel) else {
        return Ok(());
    };
    if !cfg.is_artifact(&path) {
        return Ok(()); // a hidden or scratch name: never an artifact, whatever its bytes
    }
    let error = format!("a name baton cannot take, left alone: {why:#}");
    let mut ledger = ctx.ledger.lock();
    ledger.refresh()?;
    if ledger.rejection(&path, "")?.as_deref() == Some(error.as_str()) {
        return Ok(());
    }
    tracing::warn!(%path, "{error}");
    ledger.append(vec![Record::Rejected {
        path,
        hash: None,
        error,
    }])?;
    Ok(())
}

/// Ingests one path. A file whose stat is what it was when last hashed, under the same
/// config, and whose content the journal has as its version, was routed then: it is not
/// read again. Files hashed here are added to `seen`.
fn ingest(
    ctx: &Ctx,
    cfg: &Config,
    config: &str,
    path: &RelPath,
    check: Option<&mut SeenCheck>,
    seen: &mut Vec<(RelPath, Seen)>,
) -> Result<Ingested> {
    let abs = ctx.ws.abs(path);
    let meta = match std::fs::symlink_metadata(&abs) {
        Ok(meta) => meta,
        Err(_) => return Ok(Ingested::Nothing),
    };
    if meta.is_dir() {
        return Ok(Ingested::Folder);
    }
    if !cfg.is_artifact(path) {
        return Ok(Ingested::Nothing);
    }
    if !meta.is_file() {
        reject_special(ctx, path, &meta)?;
        return Ok(Ingested::Nothing);
    }
    if let Some(check) = check {
        match check.unchanged(path, &Stat::of(&meta), config) {
            Ok(true) => return Ok(Ingested::Handled(Journalled::No, None)),
            Ok(false) => {}
            Err(e) => tracing::debug!(%path, "checking by stat: {e:#}; reading it"),
        }
    }
    // Writers (`drop`, `write`, the committer) hold the exclusive lock until they have
    // journalled, so after this the journal knows who wrote what is on disk. The file is
    // opened under the lock, so what is hashed is what the journal has caught up with.
    let _guard = lock::lock_shared_if_used(&ctx.ws, path)?;
    // Beneath the workspace with no symlink followed, not blocking on a FIFO swapped in
    // meanwhile, and read no further than its size now.
    let Ok(opened) = crate::beneath::open(&ctx.ws.root, path) else {
        return Ok(Ingested::Nothing);
    };
    let file = &opened.file;
    if crate::sys::has_writer(file) {
        return Ok(Ingested::Busy);
    }
    let before = file.metadata().map(|m| Stat::of(&m)).ok();
    let (hash, size, head) = crate::publish::hash_keeping_head(&mut opened.reader(), HEAD_BYTES)
        .with_context(|| format!("reading {path}"))?;
    let meta = file.metadata().ok();
    // A file changed just now cannot be vouched for by its stat (see `Seen`): not kept.
    if let (Some(stat), true) = (before, before == meta.as_ref().map(Stat::of)) {
        if let Some(now) = Seen::now(stat, hash.clone(), config) {
            seen.push((path.clone(), now));
        }
    }
    let front = frontmatter::from_head(&head);
    let read = match meta {
        Some(meta) if size <= INDEX_WHAT_WAS_READ && head.len() as u64 == size => {
            Some(Box::new(FileRead {
                meta,
                bytes: head,
                hash: hash.clone(),
            }))
        }
        _ => None,
    };
    let mut ledger = ctx.ledger.lock();
    ledger.refresh()?;
    let mut records = Vec::new();
    let producer = match ledger.artifact(path)? {
        Some(known) if known.hash == hash => known.attribution.task.clone(),
        _ => {
            records.push(Record::artifact(
                path.clone(),
                hash.clone(),
                size,
                Attribution::external(),
            ));
            None
        }
    };
    let version = Version {
        path,
        hash: &hash,
        producer: producer.as_ref(),
        front,
    };
    records.extend(route::route_version(&ctx.ws, cfg, &*ledger, version)?);
    if records.is_empty() {
        return Ok(Ingested::Handled(Journalled::No, read));
    }
    ledger.append(records)?;
    Ok(Ingested::Handled(Journalled::Yes, read))
}

/// The artifact paths under `dir` (a stage or a folder in one), or under every stage,
/// in name order. Hidden folders are not entered, and no file is stat'ed (the ingest
/// does that once). A walk of every stage (at start, after lost events) lists first the
/// paths the store has never seen (`check`): what arrived while the daemon was down is
/// dispatched before the rest is checked, however many files the stages hold.
fn list(
    ctx: &Ctx,
    cfg: &Config,
    dir: Option<&RelPath>,
    check: Option<&mut SeenCheck>,
) -> Vec<RelPath> {
    let roots: Vec<RelPath> = match dir {
        Some(dir) => vec![dir.clone()],
        None => cfg
            .stages
            .iter()
            .filter_map(|s| RelPath::new(s).ok())
            .collect(),
    };
    let mut out: Vec<RelPath> = Vec::new();
    for root in roots {
        // Symlinks, FIFOs and devices too: ingest journals them as rejected.
        let watches = ctx.watches.get().map(|w| &**w);
        walk_files(
            &ctx.ws.abs(&root),
            &root,
            watches,
            &mut |found| match found {
                Ok(path) if cfg.is_artifact(&path) => out.push(path),
                Ok(_) => {}
                Err((abs, e)) => {
                    let rel = abs.strip_prefix(&ctx.ws.root).unwrap_or(&abs);
                    if let Err(e) = reject_bad_name(ctx, cfg, rel, &e) {
                        tracing::warn!("journalling the rejection of {}: {e:#}", rel.display());
                    }
                }
            },
        );
    }
    out.sort_unstable();
    match (dir, check) {
        (None, Some(check)) => match check.seen_among(&out) {
            Ok(seen) => {
                let (known, unseen): (Vec<_>, Vec<_>) =
                    out.into_iter().zip(seen).partition(|(_, seen)| *seen);
                unseen.into_iter().chain(known).map(|(p, _)| p).collect()
            }
            Err(e) => {
                tracing::warn!("the state store: {e:#}; the start walk goes in name order");
                out
            }
        },
        _ => out,
    }
}

/// Calls `found` with each file (anything but a folder) under `dir` (the workspace path
/// `rel`), or with its absolute path and why its name is no workspace path, without
/// following symlinks or entering hidden folders. The type comes from the folder's
/// listing, so nothing is stat'ed. Each folder is watched (`watches`) before it is
/// listed: what arrives in it is listed or heard.
fn walk_files(
    dir: &Path,
    rel: &RelPath,
    watches: Option<&Watches>,
    found: &mut impl FnMut(Result<RelPath, (PathBuf, anyhow::Error)>),
) {
    if let Some(watches) = watches {
        if let Err(e) = watches.watch(dir) {
            tracing::warn!("{e:#}; what arrives there is found by the periodic reconcile");
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!("scanning {}: {e}", dir.display());
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("scanning {}: {e}", dir.display());
                continue;
            }
        };
        let name = entry.file_name();
        let child = rel.child(&name);
        match entry.file_type() {
            Ok(t) if t.is_dir() => match child {
                _ if name.as_encoded_bytes().starts_with(b".") => {}
                Ok(child) => walk_files(&entry.path(), &child, watches, found),
                Err(e) => found(Err((entry.path(), e))),
            },
            Ok(_) => found(child.map_err(|e| (entry.path(), e))),
            Err(e) => tracing::warn!("scanning {}: {e}", entry.path().display()),
        }
    }
}
