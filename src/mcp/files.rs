//! The workspace's files as the MCP tools and resources see them: a paged listing with
//! each file's author, and paged reads under the path's shared lock.

use std::os::unix::fs::FileExt as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use globset::GlobMatcher;
use schemars::JsonSchema;
use serde::Serialize;

use crate::config::Config;
use crate::error::{Code, refuse};
use crate::journal::History as _;
use crate::lock::{self, Mode};
use crate::publish;
use crate::store::Store;
use crate::workspace::{RelPath, Workspace, visible_files};

/// One artifact, as `list_files` gives it.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FileEntry {
    /// Workspace-relative path: pass it to read_file, write_file or delegate.
    pub(crate) path: String,
    pub(crate) stage: String,
    /// Bytes.
    pub(crate) size: u64,
    /// Who wrote its latest version: an agent's name, `human`, or `external` (written
    /// outside baton); null if the journal has not recorded it yet.
    pub(crate) author: Option<String>,
    /// The task whose output it is, if an agent's.
    pub(crate) task: Option<String>,
    /// When it last changed (RFC 3339).
    pub(crate) modified: String,
}

/// One page of [`list`].
pub(crate) struct Page {
    pub(crate) files: Vec<FileEntry>,
    /// Where the next page starts, if there is one.
    pub(crate) next_cursor: Option<String>,
}

/// What to list.
pub(crate) struct Listing<'a> {
    pub(crate) stage: Option<&'a str>,
    pub(crate) glob: Option<GlobMatcher>,
    pub(crate) limit: usize,
    /// The `next_cursor` of the page before: the last path it held.
    pub(crate) cursor: Option<&'a str>,
}

/// The artifacts of `cfg`'s stages (or one stage) in path order, one page of them.
pub(crate) fn list(ws: &Workspace, cfg: &Config, what: &Listing) -> Result<Page> {
    let stages: Vec<&String> = match what.stage {
        Some(stage) => {
            let found = cfg.stages.iter().find(|s| s.eq_ignore_ascii_case(stage));
            vec![found.ok_or_else(|| {
                refuse(
                    Code::NotFound,
                    format!(
                        "stage {stage:?}: no such stage; stages are {}",
                        cfg.stages.join(", ")
                    ),
                )
            })?]
        }
        None => cfg.stages.iter().collect(),
    };
    let mut paths: Vec<RelPath> = Vec::new();
    for stage in stages {
        paths.extend(
            visible_files(&ws.root, stage)
                .into_iter()
                .filter(|rel| cfg.is_artifact(rel))
                .filter(|rel| what.cursor.is_none_or(|c| rel.as_str() > c))
                .filter(|rel| what.glob.as_ref().is_none_or(|g| g.is_match(rel.as_str()))),
        );
    }
    paths.sort();
    let more = paths.len() > what.limit;
    paths.truncate(what.limit);
    // Authorship is the journal's; a store that cannot be opened (a sandbox that may
    // not write it) leaves it unknown rather than failing the listing.
    let store = Store::open(ws).ok();
    let mut files = Vec::with_capacity(paths.len());
    for rel in &paths {
        let Ok(meta) = std::fs::symlink_metadata(ws.abs(rel)) else {
            continue; // removed since the walk
        };
        let attribution = store
            .as_ref()
            .and_then(|s| s.artifact(rel).ok().flatten())
            .map(|a| a.attribution);
        files.push(FileEntry {
            path: rel.to_string(),
            stage: rel.first().to_string(),
            size: meta.len(),
            author: attribution.as_ref().map(|a| a.by.to_string()),
            task: attribution.and_then(|a| a.task).map(|t| t.to_string()),
            modified: meta
                .modified()
                .map(|t| humantime::format_rfc3339_millis(t).to_string())
                .unwrap_or_default(),
        });
    }
    Ok(Page {
        next_cursor: more
            .then(|| paths.last().map(ToString::to_string))
            .flatten(),
        files,
    })
}

/// One page of a file, as `read_file` gives it.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FileText {
    pub(crate) path: String,
    /// The blake3 hash of the whole file: pass it as write_file's `expected_hash` so a
    /// write on top of it is refused if someone changed the file since.
    pub(crate) hash: String,
    /// Bytes in the whole file.
    pub(crate) size: u64,
    /// Where this page starts (bytes).
    pub(crate) offset: u64,
    /// The page's text (UTF-8); null for a binary file.
    pub(crate) content: Option<String>,
    /// Pass it as `offset` for the next page; null when this page reaches the end.
    pub(crate) next_offset: Option<u64>,
    /// The file is not UTF-8 text (it is described, not shown).
    pub(crate) binary: bool,
    /// This is the version the current task staged (it is published when the task
    /// succeeds), not the published one.
    pub(crate) staged: bool,
}

/// The most a page may hold.
pub(crate) const MAX_PAGE: usize = 1024 * 1024;

/// Reads `target` from `offset` (bytes) for at most `limit` bytes, cut at a character
/// boundary, under the path's shared lock. Inside a task (`out` set) its own staged
/// version is read if it wrote one.
pub(crate) fn read(
    ws: &Workspace,
    out: Option<&Path>,
    target: &RelPath,
    offset: u64,
    limit: usize,
) -> Result<FileText> {
    let staged = out
        .map(|o| o.join(target.as_str()))
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()));
    let _guard = match staged {
        Some(_) => None,
        None => Some(lock::lock_unless_held(ws, target, Mode::Shared)?),
    };
    let opened = match &staged {
        Some(path) => crate::beneath::open_path(path, false),
        None => crate::beneath::open(&ws.root, target),
    };
    let opened = opened.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => refuse(Code::NotFound, format!("{target}: no such file")),
        std::io::ErrorKind::InvalidInput => refuse(
            Code::NotAnArtifact,
            format!("{target}: {e}; nothing was read"),
        ),
        _ => anyhow::Error::from(e).context(format!("reading {target}")),
    })?;
    let (hash, size) =
        publish::hash_reader(&mut opened.reader()).with_context(|| format!("reading {target}"))?;
    let mut head = vec![0u8; 8192.min(size as usize)];
    opened.file.read_exact_at(&mut head, 0)?;
    let binary = crate::text::looks_binary(&head);
    let mut text = FileText {
        path: target.to_string(),
        hash,
        size,
        offset: offset.min(size),
        content: None,
        next_offset: None,
        binary,
        staged: staged.is_some(),
    };
    if binary {
        return Ok(text);
    }
    let want = (limit as u64).min(size.saturating_sub(text.offset)) as usize;
    // A few bytes more, to finish the last character.
    let mut bytes = vec![0u8; (want + 3).min((size - text.offset) as usize)];
    opened.file.read_exact_at(&mut bytes, text.offset)?;
    // Start on a character boundary (an offset inside one skips its continuation
    // bytes), end on one.
    let start = bytes.iter().take_while(|&&b| b & 0xC0 == 0x80).count();
    let mut end = want.max(start);
    while end < bytes.len() && bytes[end] & 0xC0 == 0x80 {
        end += 1;
    }
    let page = String::from_utf8_lossy(&bytes[start..end]).into_owned();
    let next = text.offset + end as u64;
    text.offset += start as u64;
    text.next_offset = (next < size).then_some(next);
    text.content = Some(page);
    Ok(text)
}
