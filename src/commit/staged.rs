//! What an attempt left in its staging tree, checked against what its agent may write.
//!
//! Two kinds of trouble are kept apart: a [`ScopeViolation`] is the agent's doing (an
//! output it may not write, a symlink, a file it made unreadable), recorded as a failed
//! attempt; any other I/O error is baton's own, returned as an error, never blamed on
//! the agent.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::config::{Agent, Config};
use crate::frontmatter::{self, FrontMatter, FrontMatterError};
use crate::journal::TaskId;
use crate::publish;
use crate::workspace::RelPath;

/// The name of the optional summary an agent leaves at the root of `$BATON_OUT`.
pub(crate) const RESULT_FILE: &str = "result.toml";

/// An output in the staging tree, bound for `path`, hashed and synced.
pub(crate) struct Staged {
    pub(crate) path: RelPath,
    pub(crate) file: PathBuf,
    pub(crate) hash: String,
    pub(crate) size: u64,
    pub(crate) front: Result<Option<FrontMatter>, FrontMatterError>,
}

/// Why a successful agent's outputs may not be committed: the agent's doing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ScopeViolation {
    /// A name baton cannot use as a workspace path.
    BadPath {
        shown: String,
        error: String,
    },
    /// A symlink, FIFO, socket or device: only regular files are committed.
    NotRegularFile(RelPath),
    /// A hard link: the file is shared with another path, maybe outside the workspace.
    HardLink(RelPath),
    /// More files, or more bytes, than the agent's `max_output_files`/`max_output_bytes`.
    TooMuch {
        what: &'static str,
        found: u64,
        limit: u64,
    },
    OutsideStages {
        path: RelPath,
        stages: Vec<String>,
    },
    StageNotWritable {
        path: RelPath,
        agent: String,
        writes: Vec<String>,
    },
    /// Outside the narrower `writes` its delegator gave this task.
    OutsideNarrowed {
        path: RelPath,
        writes: Vec<String>,
    },
    /// Something in the staging tree that the agent made unreadable (or removed while
    /// it was being read).
    Unreadable {
        shown: String,
        error: String,
    },
}

impl fmt::Display for ScopeViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Escaped: a name with a newline would split the one-line reason in two.
            ScopeViolation::BadPath { shown, error } => {
                write!(f, "`{}`: {error}", shown.escape_debug())
            }
            ScopeViolation::NotRegularFile(path) => write!(
                f,
                "`{path}` is not a regular file (symlinks are never committed)"
            ),
            ScopeViolation::HardLink(path) => write!(
                f,
                "`{path}` is a hard link to a file elsewhere (it has more than one name); write a copy instead"
            ),
            ScopeViolation::TooMuch { what, found, limit } => write!(
                f,
                "the staging tree holds {found} {what} or more, past the agent's limit of {limit} (`max_output_{what}`)"
            ),
            ScopeViolation::OutsideStages { path, stages } => write!(
                f,
                "`{path}` is not inside a stage (stages: {})",
                stages.join(", ")
            ),
            ScopeViolation::StageNotWritable {
                path,
                agent,
                writes,
            } => write!(
                f,
                "`{path}` is in stage `{}`, which agent `{agent}` may not write (writes = [{}])",
                path.first(),
                writes.join(", ")
            ),
            ScopeViolation::OutsideNarrowed { path, writes } => write!(
                f,
                "`{path}` is outside what this task was delegated to write (writes = [{}])",
                writes.join(", ")
            ),
            ScopeViolation::Unreadable { shown, error } => {
                write!(
                    f,
                    "cannot read `{}` in the staging tree: {error}",
                    shown.escape_debug()
                )
            }
        }
    }
}

/// Whether a brief with front matter `front` is one that `task` delegated.
pub(crate) fn is_delegation(
    front: &Result<Option<FrontMatter>, FrontMatterError>,
    task: &TaskId,
) -> bool {
    matches!(front, Ok(Some(f)) if f.reply_to.as_deref() == Some(task.as_str()) && f.to.is_some())
}

/// The outputs staged under `out`, hashed and synced, or the first reason the agent's
/// outputs may not be committed. Hidden and scratch files are ignored. `narrowed` is
/// the task's delegated `writes` (empty: the agent's own).
pub(crate) fn staged_outputs(
    cfg: &Config,
    agent: &Agent,
    task: &TaskId,
    narrowed: &[String],
    out: &Path,
) -> Result<Result<Vec<Staged>, ScopeViolation>> {
    let mut staged = Vec::new();
    let mut total = 0u64;
    // Most attempts leave nothing, or one folder: an empty tree costs one listing.
    if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_none()) {
        return Ok(Ok(staged));
    }
    let walk = walkdir::WalkDir::new(out)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let shown = e.path().map_or_else(
                    || out.display().to_string(),
                    |p| p.strip_prefix(out).unwrap_or(p).display().to_string(),
                );
                let io = e
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("a loop"));
                return agent_caused(io, shown).context("reading the staging tree");
            }
        };
        let rel = entry.path().strip_prefix(out).unwrap_or(entry.path());
        if entry.file_type().is_dir() || rel == Path::new(RESULT_FILE) {
            continue;
        }
        let path = match RelPath::from_path(rel) {
            Ok(path) => path,
            Err(e) => {
                return Ok(Err(ScopeViolation::BadPath {
                    shown: rel.display().to_string(),
                    error: e.to_string(),
                }));
            }
        };
        if path.is_ignored() {
            continue;
        }
        if !entry.file_type().is_file() {
            return Ok(Err(ScopeViolation::NotRegularFile(path)));
        }
        let (linked, len) = entry.metadata().map_or((false, 0), |m| {
            use std::os::unix::fs::MetadataExt;
            (m.nlink() > 1, m.len())
        });
        if linked {
            return Ok(Err(ScopeViolation::HardLink(path)));
        }
        // Limits, before anything is read: a runaway agent's tree is not hashed whole.
        total += len;
        if total > agent.max_output_bytes {
            return Ok(Err(ScopeViolation::TooMuch {
                what: "bytes",
                found: total,
                limit: agent.max_output_bytes,
            }));
        }
        if staged.len() as u64 >= agent.max_output_files {
            return Ok(Err(ScopeViolation::TooMuch {
                what: "files",
                found: staged.len() as u64 + 1,
                limit: agent.max_output_files,
            }));
        }
        if !cfg.is_artifact(&path) {
            return Ok(Err(ScopeViolation::OutsideStages {
                path,
                stages: cfg.stages.clone(),
            }));
        }
        let file = entry.into_path();
        // A brief this task delegated (`baton delegate`, into the first stage) is
        // governed by `delegates_to`, checked when it is routed, not by `writes`.
        let front = frontmatter::read(&file);
        let delegation = is_delegation(&front, task) && path.first() == cfg.stages[0];
        if !agent.may_write(&path) && !delegation {
            return Ok(Err(ScopeViolation::StageNotWritable {
                path,
                agent: agent.name.clone(),
                writes: agent.writes.clone(),
            }));
        }
        if !delegation && !narrowed.is_empty() && !narrowed.iter().any(|w| path.is_within(w)) {
            return Ok(Err(ScopeViolation::OutsideNarrowed {
                path,
                writes: narrowed.to_vec(),
            }));
        }
        let (hash, size) = match publish::hash_file(&file) {
            Ok(hashed) => hashed,
            Err(e) => {
                return agent_caused(e, path.to_string())
                    .with_context(|| format!("hashing the staged {path}"));
            }
        };
        publish::fsync_file(&file)?;
        staged.push(Staged {
            path,
            file,
            hash,
            size,
            front,
        });
    }
    Ok(Ok(staged))
}

/// An error reading the staging tree as a violation when the agent caused it (it made
/// something unreadable, or removed it), else as baton's own I/O error.
fn agent_caused<T>(
    error: io::Error,
    shown: String,
) -> Result<Result<T, ScopeViolation>, io::Error> {
    match error.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::NotFound => {
            Ok(Err(ScopeViolation::Unreadable {
                shown,
                error: error.to_string(),
            }))
        }
        _ => Err(error),
    }
}

/// `result.toml` as JSON for the journal; an unreadable one is reported inside it.
pub(crate) fn read_result(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(match toml::from_str::<toml::Table>(&text) {
        Ok(table) => serde_json::to_value(table).unwrap_or(serde_json::Value::Null),
        Err(e) => serde_json::json!({ "error": format!("{RESULT_FILE}: {}", e.message()) }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::parse(
            "[agents.writer]\nrun = \"true\"\nwrites = [\"drafts\"]\n",
            Path::new("/"),
        )
        .unwrap()
    }

    fn outputs(out: &Path) -> Result<Vec<String>, ScopeViolation> {
        let cfg = cfg();
        let task = TaskId::from("t-1");
        staged_outputs(&cfg, &cfg.agents["writer"], &task, &[], out)
            .unwrap()
            .map(|s| s.into_iter().map(|s| s.path.to_string()).collect())
    }

    #[test]
    fn outputs_are_checked_against_the_agents_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        std::fs::create_dir_all(out.join("drafts/sub")).unwrap();
        std::fs::write(out.join("drafts/sub/a.md"), "a").unwrap();
        std::fs::write(out.join("drafts/.scratch"), "ignored").unwrap();
        std::fs::write(out.join(RESULT_FILE), "summary = \"ok\"").unwrap();
        assert_eq!(outputs(out), Ok(vec!["drafts/sub/a.md".to_string()]));

        std::fs::create_dir_all(out.join("reviews")).unwrap();
        std::fs::write(out.join("reviews/r.md"), "r").unwrap();
        let violation = outputs(out).unwrap_err();
        assert_eq!(
            violation.to_string(),
            "`reviews/r.md` is in stage `reviews`, which agent `writer` may not write (writes = [drafts])"
        );
        std::fs::remove_file(out.join("reviews/r.md")).unwrap();

        std::os::unix::fs::symlink("/etc/passwd", out.join("drafts/link.md")).unwrap();
        assert!(matches!(
            outputs(out),
            Err(ScopeViolation::NotRegularFile(p)) if p.as_str() == "drafts/link.md"
        ));
        std::fs::remove_file(out.join("drafts/link.md")).unwrap();

        std::fs::write(out.join("notes.md"), "n").unwrap();
        assert!(matches!(
            outputs(out),
            Err(ScopeViolation::OutsideStages { .. })
        ));
    }

    #[test]
    fn a_staging_tree_the_agent_removed_is_its_doing_and_an_io_error_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            outputs(&tmp.path().join("gone")),
            Err(ScopeViolation::Unreadable { .. })
        ));
        // Anything but a missing or forbidden file is baton's trouble, not the agent's.
        let eio = io::Error::from_raw_os_error(libc::EIO);
        assert!(agent_caused::<()>(eio, "drafts/a.md".into()).is_err());
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(matches!(
            agent_caused::<()>(denied, "drafts/a.md".into()),
            Ok(Err(ScopeViolation::Unreadable { .. }))
        ));
    }
}
