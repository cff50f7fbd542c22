//! Starting a program the way the daemon starts its agents and their checks: with
//! `clone(CLONE_VM | CLONE_VFORK)`, as posix_spawn does, into a child that puts itself in
//! a process group of its own, takes its stdio and working folder and, when asked, its
//! Landlock sandbox, then execs.
//!
//! The sandbox is why this is not std's `Command`. Landlock confines the thread that
//! asks, and posix_spawn has no step to ask in; std forks the whole daemon for a
//! `pre_exec` hook, and asking from a thread made for each start cost a thread per agent
//! (bench/RESULTS.md). Here the child confines itself: it shares the daemon's memory
//! until it execs, never its credentials, so nothing of the daemon is confined.
//!
//! Everything the child needs is made before the clone (C strings, pointer arrays, pipes),
//! so the child only makes system calls: no allocation and no lock, nothing that could
//! wait on a thread of the daemon stopped half-way.

use std::ffi::{CString, OsStr, OsString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Arc;

/// A program to start, and what it starts with.
pub(crate) struct Spawn {
    /// The program's path: absolute, or relative to `cwd` if it holds a `/`. A bare name
    /// is refused (`NotFound`): resolving it on a `PATH` is the caller's part.
    pub(crate) program: PathBuf,
    /// The arguments after `argv[0]`, which is `program`.
    pub(crate) args: Vec<OsString>,
    pub(crate) cwd: PathBuf,
    pub(crate) env: Environment,
    pub(crate) stdin: OwnedFd,
    pub(crate) stdout: Output,
    pub(crate) stderr: Output,
    /// A Landlock ruleset the child confines itself with before it execs.
    pub(crate) confine: Option<OwnedFd>,
}

/// Where a started program's stdout or stderr goes.
pub(crate) enum Output {
    /// Into a new pipe, whose reading end [`Started`] holds.
    Pipe,
    /// Into this file.
    To(OwnedFd),
}

/// A program just started.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) pid: u32,
    /// Readable once the process has ended.
    pub(crate) pidfd: OwnedFd,
    /// The reading ends of its [`Output::Pipe`]s.
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
}

/// An environment: this process's own, captured once and shared, with variables set on
/// top of it.
#[derive(Clone)]
pub(crate) struct Environment {
    inherited: Arc<Vec<CString>>,
    /// `KEY=value`, each key once.
    set: Vec<CString>,
}

impl Environment {
    /// This process's environment as it is now.
    pub(crate) fn inherited() -> Environment {
        let inherited = std::env::vars_os()
            .filter_map(|(key, value)| entry(&key, &value))
            .collect();
        Environment {
            inherited: Arc::new(inherited),
            set: Vec::new(),
        }
    }

    /// Sets `key` to `value`, over the inherited value or one set before. A value holding
    /// a NUL byte cannot be passed, and unsets the variable instead.
    pub(crate) fn set(&mut self, key: &str, value: impl AsRef<OsStr>) {
        self.set.retain(|e| !has_key(e, key.as_bytes()));
        self.set.extend(entry(key.as_ref(), value.as_ref()));
    }

    /// The `envp` array: the inherited entries not set over, then the set ones, then a
    /// null pointer. It points into `self`.
    fn block(&self) -> Vec<*const c_char> {
        let set_over = |e: &CString| {
            let key = e
                .as_bytes()
                .split(|&b| b == b'=')
                .next()
                .unwrap_or_default();
            self.set.iter().any(|s| has_key(s, key))
        };
        let mut block = Vec::with_capacity(self.inherited.len() + self.set.len() + 1);
        block.extend(
            self.inherited
                .iter()
                .filter(|e| !set_over(e))
                .map(|e| e.as_ptr()),
        );
        block.extend(self.set.iter().map(|e| e.as_ptr()));
        block.push(std::ptr::null());
        block
    }
}

/// `KEY=value` as a C string; `None` if either holds a NUL byte (or the key an `=`).
fn entry(key: &OsStr, value: &OsStr) -> Option<CString> {
    if key.is_empty() || key.as_bytes().contains(&b'=') {
        return None;
    }
    let mut bytes = Vec::with_capacity(key.len() + value.len() + 1);
    bytes.extend_from_slice(key.as_bytes());
    bytes.push(b'=');
    bytes.extend_from_slice(value.as_bytes());
    CString::new(bytes).ok()
}

fn has_key(entry: &CString, key: &[u8]) -> bool {
    let bytes = entry.as_bytes();
    bytes.len() > key.len() && bytes.starts_with(key) && bytes[key.len()] == b'='
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} holds a NUL byte", s.to_string_lossy()),
        )
    })
}

/// What the child reads, and where it says why it could not exec.
#[repr(C)]
struct ChildArgs {
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    /// Descriptors for 0, 1 and 2, each 3 or above.
    stdio: [c_int; 3],
    /// The ruleset to confine the child with, or -1.
    confine: c_int,
    /// The errno of the step that failed; 0 while none has.
    error: c_int,
}

/// The child's stack: what it calls are thin wrappers around system calls.
const CHILD_STACK: usize = 64 << 10;

impl Spawn {
    /// Starts the program. Returns once it has exec'd, or with the error that kept it
    /// from doing so (the program missing, not executable, the sandbox refused).
    pub(crate) fn start(self) -> io::Result<Started> {
        if !self.program.as_os_str().as_bytes().contains(&b'/') {
            return Err(io::ErrorKind::NotFound.into());
        }
        let program = c_string(self.program.as_os_str())?;
        let cwd = c_string(self.cwd.as_os_str())?;
        let mut argv = vec![program.clone()];
        for arg in &self.args {
            argv.push(c_string(arg)?);
        }
        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let envp = self.env.block();

        let (stdout_read, stdout) = output(self.stdout)?;
        let (stderr_read, stderr) = output(self.stderr)?;
        // Each source at 3 or above, so no dup2 onto 0, 1 or 2 overwrites another.
        let stdio = [
            above_stdio(self.stdin)?,
            above_stdio(stdout)?,
            above_stdio(stderr)?,
        ];
        let mut args = ChildArgs {
            program: program.as_ptr(),
            argv: argv_ptrs.as_ptr(),
            envp: envp.as_ptr(),
            cwd: cwd.as_ptr(),
            stdio: [
                stdio[0].as_raw_fd(),
                stdio[1].as_raw_fd(),
                stdio[2].as_raw_fd(),
            ],
            confine: self.confine.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
            error: 0,
        };
        // Never read before the child writes it, so not zeroed.
        let mut stack: Vec<std::mem::MaybeUninit<u8>> = Vec::with_capacity(CHILD_STACK);
        // The stack grows down from its end, which the ABI wants 16-byte aligned.
        let top = (stack.as_mut_ptr() as usize + CHILD_STACK) & !15;

        let pid = {
            let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            // SAFETY: sigfillset fills the set it is given; pthread_sigmask reads one
            // initialised set and writes the old mask into another. Every signal is
            // blocked across the clone so no handler of the daemon runs in the child
            // before it has put every handler back to its default.
            unsafe {
                libc::sigfillset(all.as_mut_ptr());
                libc::pthread_sigmask(libc::SIG_BLOCK, all.as_ptr(), old.as_mut_ptr());
            }
            // SAFETY: the child runs `child_main` on its own stack (`stack`, alive until
            // after the clone returns) and shares this process's memory; CLONE_VFORK
            // suspends this thread until the child has exec'd or exited, so `args`, the
            // strings and arrays it points into, and `stack` outlive every use. The
            // child only makes system calls (see `child_main`).
            let pid = unsafe {
                libc::clone(
                    child_main,
                    top as *mut c_void,
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                    (&raw mut args).cast::<c_void>(),
                )
            };
            let cloned = io::Error::last_os_error();
            // SAFETY: restores the mask saved above, which pthread_sigmask initialised.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut()) };
            if pid < 0 {
                return Err(cloned);
            }
            pid
        };
        drop(stack);
        // SAFETY: `args` was written by the child, which is gone from this memory now
        // (exec'd or exited); a volatile read so the write is not assumed away.
        let error = unsafe { std::ptr::read_volatile(&raw const args.error) };
        if error != 0 {
            let mut status = 0;
            // SAFETY: waits for our own child, which has exited; writes one int.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            return Err(io::Error::from_raw_os_error(error));
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor we own.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if pidfd < 0 {
            let e = io::Error::last_os_error();
            // SAFETY: kill and waitpid on our own child, which cannot be waited for
            // otherwise; waitpid writes one int.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut 0, 0);
            }
            return Err(io::Error::new(
                e.kind(),
                format!("pidfd_open (Linux 5.3 or later) failed: {e}"),
            ));
        }
        Ok(Started {
            pid: pid as u32,
            // SAFETY: a descriptor pidfd_open just returned, owned by nothing else.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) },
            stdout: stdout_read,
            stderr: stderr_read,
        })
    }
}

/// The child's end of `output`, and the parent's reading end if it is a pipe.
fn output(output: Output) -> io::Result<(Option<OwnedFd>, OwnedFd)> {
    match output {
        Output::To(fd) => Ok((None, fd)),
        Output::Pipe => {
            let mut fds = [0; 2];
            // SAFETY: pipe2 writes two descriptors into the array it is given.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: two new descriptors, owned by nothing else.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            Ok((Some(read), write))
        }
    }
}

/// `fd`, or a close-on-exec duplicate of it at 3 or above if it is 0, 1 or 2 (a daemon
/// started with those closed hands them out again).
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a live descriptor returns a new one we own.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor fcntl just returned, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// The child, between the clone and the exec. It shares the daemon's memory (the daemon's
/// thread that cloned it waits), so it makes only system calls, and says why it failed in
/// `args.error`.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildArgs` of `Spawn::start`, alive while the parent waits.
    let args = unsafe { &mut *arg.cast::<ChildArgs>() };
    // SAFETY: each call below is a system call on integers and on pointers into `args`
    // or this stack frame; none allocates or takes a lock.
    unsafe {
        // Every caught signal back to its default: a handler of the daemon must not run
        // here. SIGPIPE too, which the daemon ignores and a shell script expects.
        for sig in 1..65 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue; // a signal glibc keeps for itself
            }
            let caught = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if caught || sig == libc::SIGPIPE {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &default, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(args);
        }
        for (target, &fd) in args.stdio.iter().enumerate() {
            if libc::dup2(fd, target as c_int) < 0 {
                return fail(args);
            }
        }
        if libc::chdir(args.cwd) != 0 {
            return fail(args);
        }
        if args.confine >= 0 {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) != 0 {
                return fail(args);
            }
            if libc::syscall(libc::SYS_landlock_restrict_self, args.confine, 0) != 0 {
                return fail(args);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(args.program, args.argv, args.envp);
        fail(args)
    }
}

/// Records errno for the parent and exits the child.
fn fail(args: &mut ChildArgs) -> c_int {
    // SAFETY: errno is this thread's; _exit ends the child without running anything of
    // the daemon's (no atexit handler, no flush of shared buffers).
    unsafe {
        args.error = (*libc::__errno_location()).max(1);
        libc::_exit(127)
    }
}

/// The exit status of our child `pid`, reaping it, or `None` while it runs.
pub(crate) fn try_reap(pid: u32) -> io::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on one pid with WNOHANG writes one int through a live pointer.
        match unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) } {
            0 => return Ok(None),
            p if p > 0 => return Ok(Some(std::process::ExitStatus::from_raw(status))),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Waits for our child `pid` to end and reaps it. Blocking.
pub(crate) fn reap_blocking(pid: u32) {
    // SAFETY: waitpid on one pid writes one int through a live pointer.
    while unsafe { libc::waitpid(pid as i32, &mut 0, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set: Vec<OsString> = self
            .set
            .iter()
            .map(|e| OsString::from_vec(e.as_bytes().to_vec()))
            .collect();
        f.debug_struct("Environment")
            .field("set", &set)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(program: &str, args: &[&str], env: Environment) -> io::Result<Started> {
        Spawn {
            program: PathBuf::from(program),
            args: args.iter().map(OsString::from).collect(),
            cwd: std::env::temp_dir(),
            env,
            stdin: std::fs::File::open("/dev/null").unwrap().into(),
            stdout: Output::Pipe,
            stderr: Output::Pipe,
            confine: None,
        }
        .start()
    }

    /// Its stdout once it has ended, and how it ended.
    fn finish(started: Started) -> (std::process::ExitStatus, String) {
        use std::io::Read as _;
        let mut out = String::new();
        std::fs::File::from(started.stdout.unwrap())
            .read_to_string(&mut out)
            .unwrap();
        loop {
            if let Some(status) = try_reap(started.pid).unwrap() {
                return (status, out);
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_started_program_gets_the_environment_set_over_the_inherited_one() {
        let mut env = Environment::inherited();
        env.set("PATH", "/nowhere");
        env.set("BATON_X", "one");
        env.set("BATON_X", "two");
        let started = spawn(
            "/bin/sh",
            &["-c", "echo \"$PATH $BATON_X $$\"; exit 3"],
            env,
        )
        .unwrap();
        let pid = started.pid;
        let (status, out) = finish(started);
        assert_eq!(status.code(), Some(3));
        // In a group of its own: `$$` is its pid, and that is its group.
        assert_eq!(out.trim(), format!("/nowhere two {pid}"));
    }

    #[test]
    fn a_started_program_blocks_no_signal_and_does_not_ignore_sigpipe() {
        // This test process ignores SIGPIPE, as every Rust program does.
        let started = spawn(
            "/bin/sh",
            &["-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status"],
            Environment::inherited(),
        )
        .unwrap();
        let (status, out) = finish(started);
        assert!(status.success());
        let mask = |name: &str| {
            let line = out.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(mask("SigBlk:"), 0, "{out}");
        assert_eq!(mask("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }

    #[test]
    fn a_program_that_cannot_start_says_why_and_leaves_no_child() {
        let env = Environment::inherited();
        let missing = spawn("/no/such/program", &[], env.clone()).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let bare = spawn("sh", &[], env.clone()).unwrap_err();
        assert_eq!(
            bare.kind(),
            io::ErrorKind::NotFound,
            "a bare name is never run from the cwd"
        );
        let not_executable = spawn("/etc/passwd", &[], env).unwrap_err();
        assert_eq!(not_executable.kind(), io::ErrorKind::PermissionDenied);
    }
}
