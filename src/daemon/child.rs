//! An agent or check the daemon started ([`crate::sys::spawn`]), as the runtime waits
//! for it: its end is a readable pidfd, its output pipes are the runtime's.

use std::io;
use std::os::fd::OwnedFd;
use std::process::ExitStatus;

use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use crate::sys::spawn::{self, Spawn};

pub(crate) struct Child {
    pid: u32,
    /// The pidfd, readable once the process has ended.
    ended: AsyncFd<OwnedFd>,
    /// Set once reaped: the pid is no longer ours then.
    status: Option<ExitStatus>,
    pub(crate) stdout: Option<pipe::Receiver>,
    pub(crate) stderr: Option<pipe::Receiver>,
}

impl Child {
    /// Starts `spawn`. Needs the runtime's context (a runtime or blocking-pool thread).
    pub(crate) fn start(spawn: Spawn) -> io::Result<Child> {
        let started = spawn.start()?;
        let pid = started.pid;
        let child = (|| {
            Ok(Child {
                pid,
                // SAFETY: an `OwnedFd` keeps its one descriptor open until it is dropped,
                // which is when the `AsyncFd` is.
                ended: unsafe {
                    AsyncFd::register_with_interest(started.pidfd, tokio::io::Interest::READABLE)
                }
                .map_err(|e| e.into_parts().1)?,
                status: None,
                stdout: started
                    .stdout
                    .map(pipe::Receiver::from_owned_fd)
                    .transpose()?,
                stderr: started
                    .stderr
                    .map(pipe::Receiver::from_owned_fd)
                    .transpose()?,
            })
        })();
        if child.is_err() {
            crate::sys::signal_process(pid, libc::SIGKILL);
            spawn::reap_blocking(pid);
        }
        child
    }

    /// Its pid, until it has been waited for.
    pub(crate) fn id(&self) -> Option<u32> {
        self.status.is_none().then_some(self.pid)
    }

    /// Its exit status if it has ended (reaping it), else `None`.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = spawn::try_reap(self.pid)?;
        }
        Ok(self.status)
    }

    /// Waits for it to end.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            self.ended.readable().await?.clear_ready();
        }
    }
}

impl Drop for Child {
    /// One never waited for is reaped by a thread of its own, so it leaves no zombie.
    fn drop(&mut self) {
        if matches!(self.try_wait(), Ok(None)) {
            let pid = self.pid;
            let _ = std::thread::Builder::new()
                .name("baton-reap".into())
                .spawn(move || spawn::reap_blocking(pid));
        }
    }
}
