//! `baton versions PATH [--json]` and `baton restore PATH --version N|HASH`: an
//! artifact's versions from the journal, and one of them put back.
//!
//! Every version baton replaced is kept in `.baton/objects/` by content hash, so a
//! version is there to restore if it is the current file or was replaced since. A
//! restore publishes it as a new version by `human`, atomically, under the path's lock;
//! the tasks it once started do not run again (the same content at the same path is
//! the same task).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::Style;
use crate::error::usage;
use crate::journal::{Attribution, Author, TaskId};
use crate::publish::{self, Published};
use crate::store::Store;
use crate::workspace::{RelPath, Workspace};

/// One version of an artifact, as the journal recorded it.
#[derive(Serialize)]
struct Version {
    /// 1 for the first version the journal knows.
    number: usize,
    hash: String,
    size: u64,
    by: Author,
    task: Option<TaskId>,
    ts: String,
    /// Whether its content is at hand: the current file, or kept in `objects/`.
    kept: Kept,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kept {
    /// It is what the file holds now.
    Current,
    /// Replaced since, and kept in `objects/`.
    Object,
    /// Its content is not at hand (edited in place outside baton, or removed).
    Gone,
}

/// The versions of `rel`, oldest first, with where each one's content is.
fn versions(ws: &Workspace, rel: &RelPath) -> Result<Vec<Version>> {
    let on_disk = publish::hash_artifact(ws, rel).ok().map(|(h, _)| h);
    let mut out: Vec<Version> = Vec::new();
    for v in Store::open(ws)?.versions_of(rel, None)? {
        let kept = if on_disk.as_deref() == Some(v.hash.as_str()) {
            Kept::Current
        } else if ws.objects_dir().join(&v.hash).is_file() {
            Kept::Object
        } else {
            Kept::Gone
        };
        out.push(Version {
            number: out.len() + 1,
            hash: v.hash,
            size: v.size,
            by: v.by,
            task: v.task,
            ts: v.ts,
            kept,
        });
    }
    Ok(out)
}

pub(crate) fn list(ws: &Workspace, path: &Path, as_json: bool) -> Result<u8> {
    let rel = ws.rel_from_user(path)?;
    let versions = versions(ws, &rel)?;
    if as_json {
        let doc = serde_json::json!({ "path": rel, "versions": versions });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(if versions.is_empty() { 1 } else { 0 });
    }
    if versions.is_empty() {
        eprintln!("baton: the journal has no version of {rel}");
        return Ok(1);
    }
    let st = Style::stdout();
    println!("{}", st.bold(rel.as_str()));
    for v in &versions {
        let task = v
            .task
            .as_ref()
            .map_or(String::new(), |t| format!("  in {t}"));
        let kept = match v.kept {
            Kept::Current => st.green("current"),
            Kept::Object => "kept".to_string(),
            Kept::Gone => st.dim("not kept"),
        };
        println!(
            "  {:>3}  {}  {}  {:<12} {:>8} bytes  {kept}{task}",
            v.number,
            &v.hash[..12.min(v.hash.len())],
            v.ts,
            v.by.as_str(),
            v.size
        );
    }
    Ok(0)
}

pub(crate) fn restore(ws: &Workspace, path: &Path, which: &str) -> Result<u8> {
    let cfg = super::common::config(ws)?;
    let rel = ws.rel_from_user(path)?;
    if !cfg.is_artifact(&rel) {
        return Err(usage!(
            "{rel}: not an artifact path (stages: {})",
            cfg.stages.join(", ")
        ));
    }
    let versions = versions(ws, &rel)?;
    let chosen: Vec<&Version> = match which.parse::<usize>() {
        Ok(n) if which.len() < 8 => versions.iter().filter(|v| v.number == n).collect(),
        // By content: the latest version with each matching hash.
        _ => {
            let mut latest: Vec<&Version> = Vec::new();
            for v in versions.iter().rev().filter(|v| v.hash.starts_with(which)) {
                if !latest.iter().any(|l| l.hash == v.hash) {
                    latest.push(v);
                }
            }
            latest
        }
    };
    let version = match chosen.as_slice() {
        [one] => *one,
        [] => bail!(
            "{rel} has no version {which} (`baton versions {rel}` lists {})",
            versions.len()
        ),
        many => {
            return Err(usage!(
                "`{which}` matches {} versions of {rel}: give more of the hash",
                many.len()
            ));
        }
    };
    let source: PathBuf = match version.kept {
        Kept::Current => {
            println!(
                "{rel} holds version {} already; nothing to do",
                version.number
            );
            return Ok(0);
        }
        Kept::Object => ws.objects_dir().join(&version.hash),
        Kept::Gone => bail!(
            "version {} of {rel} is not kept: it was changed in place outside baton, so its content is gone",
            version.number
        ),
    };
    let (kept_hash, _) =
        publish::hash_file(&source).with_context(|| format!("reading {}", source.display()))?;
    if kept_hash != version.hash {
        bail!(
            "the kept copy of version {} of {rel} is damaged ({} hashes to {kept_hash}); nothing was changed",
            version.number,
            source.display()
        );
    }
    let mut content =
        std::fs::File::open(&source).with_context(|| format!("opening {}", source.display()))?;
    if let Published::Unchanged { .. } =
        publish::publish(ws, &rel, &mut content, Attribution::human())?
    {
        println!(
            "{rel} holds version {} already; nothing to do",
            version.number
        );
        return Ok(0);
    }
    println!(
        "restored version {} of {rel} ({}), as human",
        version.number,
        &version.hash[..12.min(version.hash.len())]
    );
    Ok(0)
}
