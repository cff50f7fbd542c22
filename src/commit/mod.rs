//! Committing a task's outputs (DESIGN §4.4), for the daemon and for `baton approve`.
//!
//! A commit journals its intent (`task.committing`, fsynced) before the first rename, so
//! a crash mid-commit is rolled forward on restart: either the old or the new file is
//! at each path, never a part, and the outputs appear once. Then the `artifact` records
//! and `task.finished` are journalled together with the tasks the outputs start, in
//! one critical section of the ledger, and made durable before the commit counts.
//!
//! - [`staged`]: what the staging tree holds, checked against the agent's `writes`.

mod staged;

pub(crate) use staged::{RESULT_FILE, ScopeViolation, read_result};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::{Agent, Config};
use crate::frontmatter;
use crate::index::writer::{IndexHandle, IndexOp};
use crate::journal::{
    Attribution, Committed, Durability, Finish, Output, Record, TaskId, TaskInfo,
};
use crate::ledger::SharedLedger;
use crate::lock::{self, Mode, PathLock};
use crate::publish;
use crate::route::{self, Version};
use crate::workspace::{RelPath, Workspace};
use staged::{Staged, is_delegation, staged_outputs};

/// What a commit touches: the workspace, its config, the journal, and (in the daemon)
/// the search index.
pub(crate) struct Committer<'a> {
    pub(crate) ws: &'a Workspace,
    pub(crate) cfg: &'a Config,
    pub(crate) ledger: &'a SharedLedger,
    /// `None` outside the daemon: the next `baton search` catches the index up.
    pub(crate) index: Option<&'a IndexHandle>,
}

/// What became of a successful attempt's outputs.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Committed (or there were none); `task.finished` is journalled.
    Done,
    /// Bound for an approval stage: they wait in the staging tree, `held` journalled.
    Held,
    /// Nothing committed and nothing journalled: the attempt failed, by the agent's
    /// doing, which the caller records.
    Refused(ScopeViolation),
    /// Nothing committed: a target could not take its output (a folder where a file must
    /// go, a symlink on the way), or a rename failed and what was already replaced was
    /// put back. The attempt failed, for this reason, which the caller records.
    Failed(String),
    /// Nothing committed, for this reason: the disk was full. Not the agent's failure.
    DiskFull(String),
}

/// An attempt starts, and a commit places its outputs, only with this much free on the
/// disk: room for the attempt's folder, logs and outputs, the replaced versions kept in
/// `objects/`, and baton's own journal and store writes.
pub(crate) const MIN_FREE: u64 = 64 << 20;

impl Committer<'_> {
    /// Commits (or holds) the outputs attempt `attempt` of `task` left in its staging
    /// tree, after `duration_ms`.
    pub(crate) fn commit(
        &self,
        task: &TaskInfo,
        attempt: u32,
        duration_ms: u64,
    ) -> Result<Outcome> {
        let agent = &self.cfg.agents[&task.agent];
        let out = self.ws.attempt_dir(task.id.as_str(), attempt).join("out");
        let staged = match staged_outputs(self.cfg, agent, &task.id, &task.writes, &out)? {
            Ok(staged) => staged,
            Err(violation) => return Ok(Outcome::Refused(violation)),
        };
        if let Some(missing) = missing_expected(agent, &staged, &task.id) {
            return Ok(Outcome::Failed(missing));
        }
        let committed = Committed {
            outputs: staged
                .iter()
                .map(|s| Output {
                    path: s.path.clone(),
                    hash: s.hash.clone(),
                })
                .collect(),
            result: read_result(&out.join(RESULT_FILE)),
            delegated: staged
                .iter()
                .filter(|s| is_delegation(&s.front, &task.id))
                .map(|s| s.path.clone())
                .collect(),
        };
        if staged
            .iter()
            .any(|s| self.cfg.needs_approval(s.path.first()))
        {
            let held = Record::finished(&task.id, attempt, duration_ms, Finish::Held(committed));
            self.ledger.append(vec![held], Durability::Synced)?;
            tracing::info!(
                agent = task.agent,
                task = %task.id,
                "held: outputs wait for `baton approve {}`",
                task.id
            );
            return Ok(Outcome::Held);
        }
        if staged.is_empty() {
            // Nothing to commit: if this record is lost with the page cache, the task
            // runs once more, which changes nothing.
            let done = Record::finished(&task.id, attempt, duration_ms, Finish::Done(committed));
            self.ledger.append(vec![done], Durability::Buffered)?;
            tracing::info!(agent = task.agent, task = %task.id, duration_ms, "done, no outputs");
            return Ok(Outcome::Done);
        }

        if let Some(short) = room_to_commit(self.ws, &out, &staged) {
            return Ok(Outcome::DiskFull(short));
        }
        let _locks = self.lock_all(staged.iter().map(|s| &s.path))?;
        // All or nothing: every target is checked before the intent and the first rename.
        if let Err(reason) = check_targets(self.ws, staged.iter().map(|s| &s.path)) {
            return Ok(Outcome::Failed(reason));
        }
        if let Err(reason) = check_bases(self.ws, &out, staged.iter().map(|s| &s.path)) {
            return Ok(Outcome::Failed(reason));
        }
        let intent = Record::Committing {
            task: task.id.clone(),
            attempt,
            outputs: committed.outputs.clone(),
        };
        self.ledger.append(vec![intent], Durability::Synced)?;
        crate::failpoint::hit("after-commit-intent");
        let placing: Vec<(&Path, &RelPath)> =
            staged.iter().map(|s| (s.file.as_path(), &s.path)).collect();
        let dirs = match place_all(self.ws, &placing) {
            Ok(dirs) => dirs,
            Err(e) if e.disk_full => return Ok(Outcome::DiskFull(e.reason)),
            Err(e) => return Ok(Outcome::Failed(e.reason)),
        };
        publish::sync_dirs(&dirs)?;
        let paths: Vec<String> = staged.iter().map(|s| s.path.to_string()).collect();
        let who = Attribution::agent(&task.agent, &task.id);
        let mut records: Vec<Record> = staged
            .iter()
            .map(|s| Record::artifact(s.path.clone(), s.hash.clone(), s.size, who.clone()))
            .collect();
        records.push(Record::finished(
            &task.id,
            attempt,
            duration_ms,
            Finish::Done(committed),
        ));
        let landed = staged
            .into_iter()
            .map(|s| Landed {
                path: s.path,
                hash: s.hash,
                front: s.front,
            })
            .collect();
        self.journal(records, task, landed)?;
        tracing::info!(
            agent = task.agent,
            task = %task.id,
            duration_ms,
            outputs = paths.join(", "),
            "done"
        );
        Ok(Outcome::Done)
    }

    /// Finishes a commit whose intent (`task.committing`) was journalled but whose
    /// outputs may not all be in place: after a crash, or for `baton approve`. Returns
    /// false when the staged files are gone and the paths do not hold them either: the
    /// task must run again.
    pub(crate) fn roll_forward(&self, task: &TaskInfo) -> Result<bool> {
        let out = self
            .ws
            .attempt_dir(task.id.as_str(), task.attempt)
            .join("out");
        let _locks = self.lock_all(task.outputs.iter().map(|o| &o.path))?;
        let mut sizes = Vec::new();
        let mut placing = Vec::new();
        for output in &task.outputs {
            let staged = out.join(output.path.as_str());
            let on_disk = publish::hash_artifact(self.ws, &output.path).ok();
            if let Some((_, size)) = on_disk.as_ref().filter(|(h, _)| *h == output.hash) {
                sizes.push(*size);
                continue; // renamed before the crash
            }
            match publish::hash_file(&staged) {
                Ok((hash, size)) if hash == output.hash => {
                    placing.push((staged, &output.path));
                    sizes.push(size);
                }
                _ => return Ok(false),
            }
        }
        check_targets(self.ws, placing.iter().map(|(_, p)| *p)).map_err(anyhow::Error::msg)?;
        let dirs = place_all(self.ws, &placing).map_err(|e| anyhow::Error::msg(e.reason))?;
        publish::sync_dirs(&dirs)?;
        let who = Attribution::agent(&task.agent, &task.id);
        let mut records: Vec<Record> = task
            .outputs
            .iter()
            .zip(&sizes)
            .map(|(o, size)| Record::artifact(o.path.clone(), o.hash.clone(), *size, who.clone()))
            .collect();
        let landed: Vec<Landed> = task
            .outputs
            .iter()
            .map(|o| Landed {
                path: o.path.clone(),
                hash: o.hash.clone(),
                front: frontmatter::read(&self.ws.abs(&o.path)),
            })
            .collect();
        let committed = Committed {
            outputs: task.outputs.clone(),
            result: task.result.clone(),
            delegated: landed
                .iter()
                .filter(|l| is_delegation(&l.front, &task.id))
                .map(|l| l.path.clone())
                .collect(),
        };
        let duration_ms = task.duration_ms.unwrap_or(0);
        records.push(Record::finished(
            &task.id,
            task.attempt,
            duration_ms,
            Finish::Done(committed),
        ));
        self.journal(records, task, landed)?;
        tracing::info!(task = %task.id, "finished a commit that was interrupted");
        Ok(true)
    }

    /// Journals a commit and routes its outputs in one critical section, then makes it
    /// durable: a commit is acknowledged only once it is on disk.
    fn journal(&self, records: Vec<Record>, task: &TaskInfo, landed: Vec<Landed>) -> Result<()> {
        let paths: Vec<RelPath> = landed.iter().map(|l| l.path.clone()).collect();
        let syncer = {
            let mut ledger = self.ledger.lock();
            ledger.append(records)?;
            // One append per output, so each routing sees the tasks the ones before it
            // started (max_children).
            for Landed { path, hash, front } in landed {
                let version = Version {
                    path: &path,
                    hash: &hash,
                    producer: Some(&task.id),
                    front,
                };
                let routed = route::route_version(self.ws, self.cfg, &*ledger, version)?;
                ledger.append(routed)?;
            }
            ledger.syncer()
        };
        syncer.sync()?;
        if let Some(index) = self.index {
            for path in paths {
                index.send(IndexOp::Upsert(path, None));
            }
        }
        Ok(())
    }

    /// Exclusive locks on every path, taken in sorted order so two committers never
    /// deadlock.
    fn lock_all<'p>(&self, paths: impl Iterator<Item = &'p RelPath>) -> Result<Vec<PathLock>> {
        let sorted: BTreeSet<&RelPath> = paths.collect();
        sorted
            .into_iter()
            .map(|p| lock::lock(self.ws, p, Mode::Exclusive))
            .collect()
    }
}

/// Every target can take its file (see [`publish::check_target`]), or the first reason
/// one cannot.
fn check_targets<'p>(
    ws: &Workspace,
    targets: impl Iterator<Item = &'p RelPath>,
) -> Result<(), String> {
    for target in targets {
        publish::check_target(ws, target)
            .map_err(|reason| format!("cannot commit: {reason}; nothing was committed"))?;
    }
    Ok(())
}

/// Every target a `baton write` of the task started from a version of still holds that
/// version (see [`crate::identity::InTask::note_base`]), or why not.
fn check_bases<'p>(
    ws: &Workspace,
    out: &Path,
    targets: impl Iterator<Item = &'p RelPath>,
) -> Result<(), String> {
    let bases = crate::identity::bases_dir(out);
    for target in targets {
        let Ok(base) = std::fs::read_to_string(bases.join(target.as_str())) else {
            continue;
        };
        let now = publish::hash_artifact(ws, target)
            .ok()
            .map(|(hash, _)| hash);
        if now.as_deref().unwrap_or_default() != base.trim() {
            let was = |h: &str| match h {
                "" => "no file".to_string(),
                h => format!("version {}", &h[..12.min(h.len())]),
            };
            return Err(format!(
                "stale write: {target} changed since this task wrote it (it held {}, now \
                 {}); nothing was committed, and the next attempt starts from what is there now",
                was(base.trim()),
                was(now.as_deref().unwrap_or_default())
            ));
        }
    }
    Ok(())
}

/// Renames each staged file over its target; if one rename fails, what the ones before
/// it replaced is put back, and the reason returned. Returns the folders to sync.
fn place_all(
    ws: &Workspace,
    placing: &[(impl AsRef<Path>, &RelPath)],
) -> Result<BTreeSet<PathBuf>, NotPlaced> {
    let mut dirs = BTreeSet::new();
    let mut replaced: Vec<(&RelPath, Option<String>)> = Vec::new();
    for (staged, target) in placing {
        match publish::replace(ws, staged.as_ref(), target) {
            Ok((changed, old)) => {
                dirs.extend(changed);
                replaced.push((target, old));
            }
            Err(e) => {
                for (path, old) in replaced.iter().rev() {
                    if let Err(e) = publish::put_back(ws, path, old.as_deref()) {
                        tracing::error!(%path, "putting back what a failed commit replaced: {e:#}");
                    }
                }
                let _ = publish::sync_dirs(&dirs);
                return Err(NotPlaced {
                    disk_full: crate::error::is_disk_full(&e),
                    reason: format!(
                        "could not commit {target}: {e:#}; what was replaced was put back, \
                         nothing was committed"
                    ),
                });
            }
        }
    }
    Ok(dirs)
}

/// What a commit keeps free on the workspace's disk: its journal and store records and
/// the odd folder. The outputs themselves are renamed in, needing no room, unless the
/// staging tree is on another disk.
const COMMIT_SPARE: u64 = 4 << 20;

/// Why there is no room to commit `staged` (from `out`), if there is none: each stage
/// written to is checked on its own disk, which may not be the workspace's.
fn room_to_commit(ws: &Workspace, out: &Path, staged: &[Staged]) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    let from = dev(out);
    let mut stages: BTreeMap<&str, u64> = BTreeMap::new();
    for s in staged {
        *stages.entry(s.path.first()).or_default() += s.size;
    }
    stages.into_iter().find_map(|(stage, bytes)| {
        let dir = ws.root.join(stage);
        let dir = if dir.is_dir() { dir } else { ws.root.clone() };
        let free = fs4::available_space(&dir).ok()?;
        let copied = dev(&dir) != from;
        let needed = if copied { bytes } else { 0 } + COMMIT_SPARE;
        (free < needed).then(|| {
            format!(
                "the disk of `{stage}` has {} KiB free, short of the {} KiB this commit needs",
                free >> 10,
                needed >> 10
            )
        })
    })
}

/// Why [`place_all`] put nothing in place.
struct NotPlaced {
    reason: String,
    /// The rename or copy failed for want of space.
    disk_full: bool,
}

/// An output renamed into place, to route once the commit is journalled.
struct Landed {
    path: RelPath,
    hash: String,
    front: Result<Option<frontmatter::FrontMatter>, frontmatter::FrontMatterError>,
}

/// Why the staged outputs fail the agent's `expects`, if they do: none matches, and the
/// attempt delegated nothing (a task that hands its work on is judged at its join).
fn missing_expected(agent: &Agent, staged: &[Staged], task: &TaskId) -> Option<String> {
    if agent.expects.is_empty()
        || staged
            .iter()
            .any(|s| agent.expects_set.is_match(s.path.as_str()))
        || staged.iter().any(|s| is_delegation(&s.front, task))
    {
        return None;
    }
    Some(format!(
        "no output matching {} (`expects`): the agent exited 0 but wrote nothing it is expected to",
        agent.expects.join(", ")
    ))
}
