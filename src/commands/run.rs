//! `baton run [--once]`: the daemon in the foreground.

use std::io::Write;

use anyhow::Result;

use crate::config::Config;
use crate::daemon::{self, Until};
use crate::workspace::Workspace;

/// The exit code of a `--once` run stopped by SIGINT or SIGTERM, as a shell reports a
/// program killed by SIGINT.
const INTERRUPTED: u8 = 130;

pub(crate) fn run(ws: &Workspace, once: bool) -> Result<u8> {
    let cfg = Config::load(ws)?;
    cfg.check_runnable()?;
    let until = if once { Until::Idle } else { Until::Shutdown };
    let summary = daemon::run_in_foreground(ws, cfg, until)?;
    if until == Until::Idle {
        // A closed stderr is no reason to fail a run that did its work.
        let _ = writeln!(
            std::io::stderr(),
            "baton: {} done, {} dead, {} held{}",
            summary.done,
            summary.dead,
            summary.held,
            if summary.failed_attempts > 0 {
                format!(" ({} failed attempts retried)", summary.failed_attempts)
            } else {
                String::new()
            }
        );
    }
    if until == Until::Idle && summary.interrupted {
        let _ = writeln!(
            std::io::stderr(),
            "baton: interrupted before the work was drained; what was running runs again at the next start"
        );
        return Ok(INTERRUPTED);
    }
    Ok(if summary.dead > 0 { 1 } else { 0 })
}
