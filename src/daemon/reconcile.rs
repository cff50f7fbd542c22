//! The periodic reconcile: a level-triggered check that catches what the file watcher
//! missed (a file renamed into a folder before its watch was in place, a watcher thread
//! starved under load), so nothing waits for a restart to be seen.
//!
//! It is cheap because it looks at folders, not files: a name added, removed or renamed
//! in a folder changes that folder's mtime. Each pass lists every folder of the stages
//! (no `stat` of files) and hands on the folders whose mtime differs from the last pass;
//! only those are walked, by the ingest workers' stat-based check.
//!
//! Folder mtimes are coarse (a clock tick), so a folder changed within [`RACY`] of the
//! pass that saw it is not trusted to be settled: git's care for racy timestamps. It is
//! looked at again in the next pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::workspace::RelPath;

/// How often the stages are reconciled, in housekeeping ticks (seconds); debug builds
/// take `BATON_TEST_RECONCILE_EVERY` for tests.
pub(crate) fn every() -> u32 {
    const EVERY: u32 = 10;
    if cfg!(debug_assertions) {
        if let Some(n) = std::env::var("BATON_TEST_RECONCILE_EVERY")
            .ok()
            .and_then(|n| n.parse().ok())
        {
            return n;
        }
    }
    EVERY
}

/// A folder modified this close to the pass is looked at again in the next one.
const RACY: Duration = Duration::from_secs(2);

/// The folders' mtimes as the last pass saw them.
#[derive(Default)]
pub(crate) struct Folders {
    seen: HashMap<PathBuf, SystemTime>,
    /// Whether a pass ran yet: the first only learns the mtimes (the daemon's start
    /// walked every stage already).
    primed: bool,
}

impl Folders {
    /// The folders of `stages` under `root` that changed since the last pass, as
    /// workspace paths, outermost first (none inside another in the list).
    pub(crate) fn changed(&mut self, root: &Path, stages: &[String]) -> Vec<RelPath> {
        let now = SystemTime::now();
        let mut seen = HashMap::with_capacity(self.seen.len());
        let mut changed: Vec<PathBuf> = Vec::new();
        for stage in stages {
            let walk = walkdir::WalkDir::new(root.join(stage))
                .follow_links(false)
                .into_iter()
                .filter_entry(|e| e.file_type().is_dir() && !is_hidden(e.file_name()));
            for entry in walk.flatten() {
                let Some(mtime) = entry.metadata().ok().and_then(|m| m.modified().ok()) else {
                    continue;
                };
                let path = entry.into_path();
                let settled = now.duration_since(mtime).is_ok_and(|age| age > RACY);
                if self.primed && self.seen.get(&path) != Some(&mtime) {
                    changed.push(path.clone());
                }
                if settled {
                    seen.insert(path, mtime);
                }
            }
        }
        self.seen = seen;
        self.primed = true;
        changed.sort();
        let mut outermost: Vec<PathBuf> = Vec::new();
        for path in changed {
            if !outermost.last().is_some_and(|top| path.starts_with(top)) {
                outermost.push(path);
            }
        }
        outermost
            .iter()
            .filter_map(|p| RelPath::from_path(p.strip_prefix(root).ok()?).ok())
            .collect()
    }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mtime(path: &Path, ago: Duration) {
        let file = std::fs::File::open(path).unwrap();
        file.set_modified(SystemTime::now() - ago).unwrap();
    }

    #[test]
    fn only_folders_changed_since_the_last_pass_are_handed_on_outermost_first() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for dir in ["briefs/a/deep", "briefs/b", "drafts"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for dir in ["briefs", "briefs/a", "briefs/a/deep", "briefs/b", "drafts"] {
            set_mtime(&root.join(dir), Duration::from_secs(60));
        }
        let stages = ["briefs".to_string(), "drafts".to_string()];
        let mut folders = Folders::default();
        assert!(
            folders.changed(root, &stages).is_empty(),
            "the first pass learns"
        );
        assert!(folders.changed(root, &stages).is_empty(), "nothing changed");

        std::fs::write(root.join("briefs/a/deep/x.md"), "x").unwrap();
        std::fs::write(root.join("briefs/a/y.md"), "y").unwrap();
        let changed = folders.changed(root, &stages);
        assert_eq!(changed, vec![RelPath::new("briefs/a").unwrap()]);
        // Changed just now: racy, so looked at again until it is older than RACY.
        assert_eq!(
            folders.changed(root, &stages),
            vec![RelPath::new("briefs/a").unwrap()]
        );
        set_mtime(&root.join("briefs/a"), Duration::from_secs(30));
        set_mtime(&root.join("briefs/a/deep"), Duration::from_secs(30));
        assert_eq!(
            folders.changed(root, &stages),
            vec![RelPath::new("briefs/a").unwrap()],
            "its mtime moved"
        );
        assert!(folders.changed(root, &stages).is_empty());

        std::fs::create_dir(root.join("drafts/new")).unwrap();
        set_mtime(&root.join("drafts"), Duration::from_secs(30));
        set_mtime(&root.join("drafts/new"), Duration::from_secs(30));
        assert_eq!(
            folders.changed(root, &stages),
            vec![RelPath::new("drafts").unwrap()]
        );
    }
}
