//! An agent's output checks (`checks`, issue 15): commands run on the staged outputs of
//! an attempt that exited 0, before anything of it is committed or held. Each runs in
//! the workspace root, confined to reading when the agent is confined (it may write only
//! its own temp folder), under the agent's `timeout`. The first that fails fails the
//! attempt, with the end of its output as the reason, which the next attempt reads in
//! `BATON_FEEDBACK`. Every check runs again on every attempt.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use anyhow::{Context as _, Result};

use super::context::{Ctx, Setup};
use super::launch::Check;
use crate::journal::TaskInfo;

/// The end of a failed check's output kept in the reason.
const TAIL: u64 = 4 << 10;

/// Runs the checks of `task`'s agent on attempt `attempt`'s staging tree: why one
/// failed, or `None` if all passed (or there are none).
pub(crate) fn run(
    ctx: &Ctx,
    setup: &Setup,
    task: &TaskInfo,
    attempt: u32,
) -> Result<Option<String>> {
    let agent = &setup.cfg.agents[&task.agent];
    if agent.checks.is_empty() {
        return Ok(None);
    }
    let dir = ctx.ws.attempt_dir(task.id.as_str(), attempt);
    let out = dir.join("out");
    let runtime = tokio::runtime::Handle::current();
    for (i, argv) in agent.checks.iter().enumerate() {
        let shown = argv.join(" ");
        let tmp = dir.join(format!("check-{}.tmp", i + 1));
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let log_path = dir.join(format!("check-{}.log", i + 1));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let check = Check {
            argv,
            out: &out,
            tmp: &tmp,
            log,
        };
        let prepared = setup.launcher.check(&ctx.ws, agent, task, check)?;
        let mut child = match prepared.spawn() {
            Ok(child) => child,
            Err(e) => return Ok(Some(format!("check `{shown}` could not start: {e}"))),
        };
        let pgid = child.id();
        let waited =
            runtime.block_on(async { tokio::time::timeout(agent.timeout, child.wait()).await });
        // Whatever it left running goes with it.
        if let Some(pgid) = pgid {
            crate::sys::signal_group(pgid, libc::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        let failed = match waited {
            Ok(Ok(status)) if status.success() => None,
            Ok(Ok(status)) => Some(match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".to_string(),
            }),
            Ok(Err(e)) => return Err(e).context(format!("waiting for check `{shown}`")),
            Err(_) => {
                let _ = runtime.block_on(child.wait());
                Some(format!(
                    "timed out after {}",
                    humantime::format_duration(agent.timeout)
                ))
            }
        };
        if let Some(how) = failed {
            let output = tail(&log_path);
            tracing::info!(agent = task.agent, task = %task.id, attempt, check = shown, how, "a check failed");
            return Ok(Some(format!("check `{shown}` {how}: {output}")));
        }
    }
    Ok(None)
}

/// The last [`TAIL`] bytes of a check's output, trimmed, or a note that it said nothing.
fn tail(path: &Path) -> String {
    let mut text = Vec::new();
    let read = File::open(path).and_then(|mut f| {
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
        f.read_to_end(&mut text)
    });
    match read {
        Ok(_) if !text.trim_ascii().is_empty() => {
            String::from_utf8_lossy(text.trim_ascii()).into_owned()
        }
        _ => "(it printed nothing)".to_string(),
    }
}
