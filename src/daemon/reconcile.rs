//! Level-triggered reconciliation (DESIGN §4.1): list what is in the stages, so each
//! file can be compared with the journal. Used at start, after lost events and whenever
//! a folder appears.

use super::Ctx;
use crate::workspace::{RelPath, walk_visible};

/// The artifact paths under `dir` (a stage or a folder in one), or under every stage.
/// Hidden folders are not entered.
pub fn list(ctx: &Ctx, dir: Option<&RelPath>) -> Vec<RelPath> {
    let roots: Vec<RelPath> = match dir {
        Some(dir) => vec![dir.clone()],
        None => ctx
            .cfg
            .stages
            .iter()
            .filter_map(|s| RelPath::new(s).ok())
            .collect(),
    };
    let mut out = Vec::new();
    for root in roots {
        let walk = walk_visible(&ctx.ws.abs(&root));
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!("scanning {root}: {e}");
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&ctx.ws.root) else {
                continue;
            };
            match RelPath::from_path(rel) {
                Ok(path) if ctx.cfg.is_artifact(&path) => out.push(path),
                Ok(_) => {}
                Err(e) => tracing::warn!("skipping {}: {e}", entry.path().display()),
            }
        }
    }
    out
}
