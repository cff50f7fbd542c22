//! `baton stop`: the running daemon stops gracefully, as on SIGTERM: its agents get
//! SIGTERM (SIGKILL 5 s later) and run again at the next start; commits under way finish.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::pidfile::running_daemon;
use crate::workspace::Workspace;

/// How long to wait for the daemon to be gone before saying it is still stopping.
const PATIENCE: Duration = Duration::from_secs(60);

pub(crate) fn run(ws: &Workspace) -> Result<u8> {
    let Some(pid) = running_daemon(ws) else {
        eprintln!("baton: no daemon runs on {}", ws.root.display());
        return Ok(1);
    };
    if !crate::sys::signal_process(pid, libc::SIGTERM) {
        bail!(
            "could not signal the daemon (pid {pid}): {}",
            std::io::Error::last_os_error()
        );
    }
    if std::io::stderr().is_terminal() {
        eprintln!("stopping the daemon (pid {pid}); its running agents get SIGTERM…");
    }
    let started = Instant::now();
    while running_daemon(ws).is_some() {
        if started.elapsed() > PATIENCE {
            bail!(
                "the daemon (pid {pid}) is still stopping after {}s",
                PATIENCE.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("stopped the daemon (pid {pid})");
    Ok(0)
}
