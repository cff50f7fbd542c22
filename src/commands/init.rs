//! `baton init [DIR]`: a new workspace from `workspace-template/`, embedded in the
//! binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::config::Config;
use crate::workspace::{CONFIG_FILE, Workspace};

/// A file to write: path inside the workspace, content, executable or not.
pub(crate) type Embedded = (&'static str, &'static [u8], bool);

const TEMPLATE: &[Embedded] = &[
    (
        "baton.toml",
        include_bytes!("../../workspace-template/baton.toml"),
        false,
    ),
    (
        "agents/writer.sh",
        include_bytes!("../../workspace-template/agents/writer.sh"),
        true,
    ),
    (
        ".gitignore",
        include_bytes!("../../workspace-template/.gitignore"),
        false,
    ),
];

pub(crate) fn run(dir: Option<&Path>) -> Result<u8> {
    let dir = dir.unwrap_or(Path::new("."));
    write_workspace(dir, TEMPLATE)?;
    let shown = dir.display();
    println!("created a baton workspace in {shown}");
    println!("  next: `baton -w {shown} run` in one terminal, then");
    println!("        `echo '# Hello' > hello.md && baton -w {shown} drop hello.md` in another");
    Ok(0)
}

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
