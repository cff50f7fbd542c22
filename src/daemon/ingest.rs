//! An artifact version arriving in a stage: check it is complete, hash it under the
//! path's shared lock, attribute it from the journal, and route it.
//!
//! Blocking (hashing, locks): runs on tokio's blocking pool.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context as _, Result};

use super::Ctx;
use crate::frontmatter::{self, FrontMatter, FrontMatterError};
use crate::journal::Record;
use crate::ledger::Ledger;
use crate::lock;
use crate::route::{self, Arrival};
use crate::workspace::{RelPath, Workspace, lexical_normalise};

/// What became of an arrival.
#[derive(Debug, PartialEq)]
pub enum Ingested {
    /// Journalled and routed (`journaled`: records were appended), or already known.
    Handled { journaled: bool },
    /// A process still holds it open for writing: look again after the settle time.
    Busy,
    /// A folder: scan it.
    Folder,
    /// Gone, or not a regular file: nothing to do.
    Nothing,
}

pub fn ingest(ctx: &Ctx, path: &RelPath) -> Result<Ingested> {
    let abs = ctx.ws.abs(path);
    let meta = match std::fs::symlink_metadata(&abs) {
        Ok(meta) => meta,
        Err(_) => return Ok(Ingested::Nothing),
    };
    if meta.is_dir() {
        return Ok(Ingested::Folder);
    }
    if !meta.is_file() || !ctx.cfg.is_artifact(path) {
        return Ok(Ingested::Nothing);
    }
    // Writers (`drop`, `write`, the committer) hold the exclusive lock until they have
    // journalled, so after this the journal knows who wrote what is on disk. The file is
    // opened under the lock, so what is hashed is what the journal has caught up with.
    let _guard = lock::lock_shared_if_used(&ctx.ws, path)?;
    let Ok(mut file) = File::open(&abs) else {
        return Ok(Ingested::Nothing);
    };
    if held_for_writing(&file) {
        return Ok(Ingested::Busy);
    }
    let (hash, size, head) = crate::publish::hash_keeping_head(&mut file, HEAD_BYTES)
        .with_context(|| format!("reading {path}"))?;
    let front = front_matter_of(&head);
    let mut ledger = ctx.ledger();
    ledger.refresh()?;
    let mut records = Vec::new();
    let producer = match ledger.state.artifacts.get(path) {
        Some(known) if known.hash == hash => known.task.clone(),
        _ => {
            records.push(Record::Artifact {
                path: path.clone(),
                hash: hash.clone(),
                size,
                by: "external".into(),
                task: None,
            });
            None
        }
    };
    records.extend(routing(
        &ledger,
        ctx,
        path,
        &hash,
        producer.as_deref(),
        front,
    ));
    let journaled = !records.is_empty();
    if journaled {
        ledger.append(records)?;
    }
    Ok(Ingested::Handled { journaled })
}

/// What to journal for a journalled artifact version: its tasks, or why none.
pub fn routing(
    ledger: &Ledger,
    ctx: &Ctx,
    path: &RelPath,
    hash: &str,
    producer: Option<&str>,
    front: Result<Option<FrontMatter>, FrontMatterError>,
) -> Vec<Record> {
    if ledger
        .state
        .rejected
        .contains_key(&(path.clone(), hash.to_string()))
    {
        return Vec::new(); // reported once already
    }
    match front {
        Err(e) => vec![Record::Rejected {
            path: path.clone(),
            hash: Some(hash.to_string()),
            error: e.to_string(),
        }],
        Ok(front) => {
            let front = front.unwrap_or_default();
            let refs = match resolve_refs(&ctx.ws, path, &front.refs) {
                Ok(refs) => refs,
                Err(error) => {
                    return vec![Record::Rejected {
                        path: path.clone(),
                        hash: Some(hash.to_string()),
                        error,
                    }];
                }
            };
            let delegation = producer.is_some() && front.reply_to.as_deref() == producer;
            route::route(
                &ctx.cfg,
                &ledger.state,
                &Arrival {
                    path,
                    hash,
                    producer,
                    to: front.to.as_deref(),
                    delegation,
                    refs: &refs,
                },
            )
            .records
        }
    }
}

/// Front-matter `refs` as workspace paths: each must exist and stay inside the
/// workspace. `./` and `../` are taken from the artifact's folder, anything else from
/// the workspace root.
pub fn resolve_refs(
    ws: &Workspace,
    artifact: &RelPath,
    refs: &[String],
) -> Result<Vec<RelPath>, String> {
    refs.iter()
        .map(|r| {
            let rel = resolve_ref(ws, artifact, r).map_err(|e| format!("refs: `{r}`: {e}"))?;
            let abs = ws.abs(&rel);
            let real = abs
                .canonicalize()
                .map_err(|_| format!("refs: `{r}` ({rel}) does not exist"))?;
            if !real.starts_with(&ws.root) {
                return Err(format!(
                    "refs: `{r}` leads outside the workspace (through a symlink)"
                ));
            }
            Ok(rel)
        })
        .collect()
}

fn resolve_ref(ws: &Workspace, artifact: &RelPath, r: &str) -> Result<RelPath> {
    let r = r.trim();
    if let Ok(inside) = Path::new(r).strip_prefix(&ws.root) {
        return RelPath::from_path(inside);
    }
    if !(r.starts_with("./") || r.starts_with("../")) {
        return RelPath::new(r);
    }
    let folder = ws
        .root
        .join(crate::index::store::parent_of(artifact.as_str()));
    match lexical_normalise(&folder.join(r)).strip_prefix(&ws.root) {
        Ok(inside) => RelPath::from_path(inside),
        Err(_) => anyhow::bail!("climbs out of the workspace"),
    }
}

/// Front matter sits at the top: this much of a file is kept for it.
const HEAD_BYTES: usize = 1 << 20;

/// The front matter of a text file; binary files and files without a fence have none.
pub fn read_front_matter(path: &Path) -> Result<Option<FrontMatter>, FrontMatterError> {
    let mut head = Vec::new();
    let Ok(file) = File::open(path) else {
        return Ok(None);
    };
    if file.take(HEAD_BYTES as u64).read_to_end(&mut head).is_err() {
        return Ok(None);
    }
    front_matter_of(&head)
}

fn front_matter_of(head: &[u8]) -> Result<Option<FrontMatter>, FrontMatterError> {
    if !head.starts_with(b"+++") {
        return Ok(None);
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
    };
    frontmatter::parse(text).map(|(fm, _)| fm)
}

/// Whether some process holds `file` open for writing. A read lease is refused exactly
/// then (fcntl(2) F_SETLEASE, on a descriptor opened read-only); where leases are
/// unavailable, assume not.
fn held_for_writing(file: &File) -> bool {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on an fd we own; F_SETLEASE takes an int argument.
    let taken = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
    if taken == 0 {
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return false;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}
