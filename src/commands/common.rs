//! Helpers more than one command uses.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::config::Config;
use crate::journal::TaskInfo;
use crate::store::Store;
use crate::workspace::{CONFIG_FILE, Workspace};

pub(crate) use crate::config::load_for_command as config;

/// The task a TASK|PATH argument names: the latest task that read or wrote a path the
/// journal knows, else the task whose id it is a prefix of.
pub(crate) fn find_task_or_path(ws: &Workspace, store: &Store, target: &str) -> Result<TaskInfo> {
    if let Ok(path) = ws.rel_from_user(Path::new(target)) {
        if let Some(task) = store.tasks_touching(&path)?.pop() {
            return Ok(task);
        }
    }
    find_task(store, target)
}

/// The task a TASK argument names (any unique prefix of its id, DESIGN §9).
pub(crate) fn find_task(store: &Store, prefix: &str) -> Result<TaskInfo> {
    Ok(store.find_task(prefix)?)
}

/// A file to write: path inside the workspace, content, executable or not.
pub(crate) type Embedded = (&'static str, &'static [u8], bool);

/// Writes `files` into `dir` (created if needed) and the stage folders its config
/// names. Refuses to overwrite an existing `baton.toml`.
pub(crate) fn write_workspace(dir: &Path, files: &[Embedded]) -> Result<Workspace> {
    let config = dir.join(CONFIG_FILE);
    if config.exists() {
        bail!(
            "{} exists already; baton init never overwrites it",
            config.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (path, bytes, executable) in files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        if target.exists() && *path != CONFIG_FILE {
            continue; // keep what the user has
        }
        std::fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))?;
        if *executable {
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let ws = Workspace::at(dir.canonicalize()?);
    let cfg = Config::load(&ws)?;
    for stage in &cfg.stages {
        std::fs::create_dir_all(ws.root.join(stage))?;
    }
    Ok(ws)
}
