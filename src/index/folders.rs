//! The folder map of the cheap catch-up (DESIGN §8): a folder's mtime changes whenever
//! an entry is added, removed or renamed in it, which is how atomic saves and `baton
//! drop` publish. So a search without a daemon stats the folders only, and lists just
//! the ones that changed (`catch_up`). Files edited in place keep their folder's mtime:
//! `baton index` checks every file.
//!
//! The folder mtimes as of the last catch-up live in `.baton/index/folders.json`. Each is
//! taken *before* its folder is listed, so a change during the listing shows next time.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::store::{index_dir, mtime_ns};
use crate::workspace::{Workspace, walk_visible};

const FILE: &str = "folders.json";

/// Timestamps are coarse (a clock tick): a folder changed in the same tick right after
/// it was stat'ed keeps its mtime. So an mtime younger than this is not trusted; the
/// folder is recorded as unknown and listed again next time (git's "racily clean").
const RACY_NS: u64 = 2_000_000_000;

/// The mtime to record for a folder: 0 (unknown) while it is too recent to trust.
pub(super) fn trusted(mtime: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    if now.saturating_sub(mtime) < RACY_NS {
        0
    } else {
        mtime
    }
}

/// Folder (workspace-relative) → its mtime in nanoseconds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct FolderMap {
    pub(super) folders: BTreeMap<String, u64>,
}

impl FolderMap {
    pub(crate) fn load(ws: &Workspace) -> Option<FolderMap> {
        let text = std::fs::read_to_string(index_dir(ws).join(FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the map atomically (write, then rename over).
    pub(crate) fn save(&self, ws: &Workspace) -> Result<()> {
        let path = index_dir(ws).join(FILE);
        let tmp = index_dir(ws).join(format!(".{FILE}.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Records `dir` and every folder below it.
    pub(super) fn add_tree(&mut self, ws: &Workspace, dir: &str) {
        let walk = walk_visible(&ws.root.join(dir));
        for entry in walk.flatten().filter(|e| e.file_type().is_dir()) {
            if let Ok(rel) = entry.path().strip_prefix(&ws.root) {
                self.record(rel, &entry);
            }
        }
    }

    /// Records folder `entry` (at `rel` in the workspace) with its mtime as of now: call
    /// it before the folder is listed.
    pub(crate) fn record(&mut self, rel: &Path, entry: &walkdir::DirEntry) {
        if let (Some(rel), Ok(meta)) = (rel.to_str(), entry.metadata()) {
            self.folders
                .insert(rel.to_string(), trusted(mtime_ns(&meta)));
        }
    }

    pub(super) fn forget_tree(&mut self, dir: &str) {
        let below = format!("{dir}/");
        self.folders
            .retain(|k, _| k != dir && !k.starts_with(&below));
    }
}
