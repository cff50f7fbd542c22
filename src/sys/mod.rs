//! Every call into libc and every read of `/proc`, behind safe wrappers: one place to
//! audit the `unsafe` blocks, and nothing platform-specific elsewhere.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

pub(crate) mod spawn;

/// The fields of /proc/PID/stat from the third (the state) on. The command name (the
/// second) is in parentheses and may hold spaces, so fields are counted after it.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// The start time of `pid` in clock ticks since boot (/proc/PID/stat field 22), which
/// together with the pid names one process for good: pids are reused, start times not.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Now, in the units and clock of [`start_time`]: clock ticks of `CLOCK_BOOTTIME`. The
/// kernel stamps a new process with the boot-time clock as it forks and /proc shows it
/// in whole clock ticks, so a child started between two calls that agree has exactly
/// that start time, with no read of /proc.
pub(crate) fn boot_ticks() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a pointer to a live one.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut t) };
    // SAFETY: sysconf reads a constant of the system; no memory involved.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let ns = t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
    ns / (1_000_000_000 / hz)
}

/// The parent of `pid` (/proc/PID/stat field 4).
pub(crate) fn parent_pid(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// Sends `signal` to process `pid`; false if there is no such process (or it is not
/// ours to signal).
pub(crate) fn signal_process(pid: u32, signal: i32) -> bool {
    // SAFETY: kill(2) with a positive pid signals one process; no memory involved.
    unsafe { libc::kill(pid as i32, signal) == 0 }
}

/// Sends `signal` to every process in group `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
    unsafe {
        libc::kill(-(pgid as i32), signal);
    }
}

/// Whether any live (non-zombie) process is still in group `pgid`. Zombies are left out:
/// orphans are reparented to pid 1, which in a container may never reap them.
pub(crate) fn group_alive(pgid: u32) -> bool {
    // SAFETY: signal 0 only checks that the group exists; no memory involved.
    let exists = unsafe { libc::kill(-(pgid as i32), 0) } == 0;
    if !exists {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        let Some(fields) = stat_fields(pid) else {
            return false;
        };
        let pgrp = fields.get(2).and_then(|s| s.parse::<u32>().ok());
        pgrp == Some(pgid) && fields.first().map(String::as_str) != Some("Z")
    })
}

/// Whether some process holds `file` open for writing. A read lease is refused exactly
/// then (fcntl(2) F_SETLEASE, on a descriptor opened read-only); where leases are
/// unavailable, assume not.
pub(crate) fn has_writer(file: &File) -> bool {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` owns and keeps open; F_SETLEASE takes an int.
    let taken = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
    if taken == 0 {
        // SAFETY: as above; gives back the lease just taken.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return false;
    }
    io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}

/// Lets the programs this process starts inherit `file` (clears close-on-exec).
pub(crate) fn keep_across_exec(file: &File) -> io::Result<()> {
    // SAFETY: F_SETFD on a descriptor `file` owns and keeps open; no memory involved.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Lowers the calling thread's CPU priority to `nice` (threads it starts inherit it).
/// Best effort: without it the thread competes like any other.
pub(crate) fn lower_thread_priority(nice: i32) {
    // SAFETY: setpriority on this thread's own id; no memory involved.
    let tid = unsafe { libc::gettid() };
    // SAFETY: as above.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) } != 0 {
        tracing::debug!(
            "could not lower a thread's priority: {}",
            io::Error::last_os_error()
        );
    }
}

/// Restores the default SIGPIPE action, so output into a closed pipe (`baton log | head`)
/// ends the process quietly like any Unix tool, instead of a panic on the next write.
pub(crate) fn die_on_broken_pipe() {
    // SAFETY: setting a signal disposition to its default; no handler involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A folder to resolve a name in: an open one, or the current folder (for absolute
/// paths and those outside the workspace).
#[derive(Clone, Copy)]
pub(crate) enum At<'a> {
    Dir(BorrowedFd<'a>),
    Cwd,
}

impl At<'_> {
    fn raw(self) -> libc::c_int {
        match self {
            At::Dir(fd) => fd.as_raw_fd(),
            At::Cwd => libc::AT_FDCWD,
        }
    }
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::other("a name with a NUL byte"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// openat(2) with `flags` (`O_CLOEXEC` always added) and, with `O_CREAT`, `mode`.
pub(crate) fn open_at(at: At, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    let name = c_name(name)?;
    // SAFETY: `name` is a live NUL-terminated string; the returned descriptor is new
    // and owned by nobody else.
    let fd = check(unsafe {
        libc::openat(
            at.raw(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: `fd` was just opened and is owned here alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// mkdirat(2).
pub(crate) fn mkdir_at(at: At, name: &OsStr, mode: u32) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: `name` is a live NUL-terminated string.
    check(unsafe { libc::mkdirat(at.raw(), name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// renameat(2): `from` in `from_at` over `to` in `to_at`; a symlink at `to` is
/// replaced, never followed.
pub(crate) fn rename_at(from_at: At, from: &OsStr, to_at: At, to: &OsStr) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: both names are live NUL-terminated strings.
    check(unsafe { libc::renameat(from_at.raw(), from.as_ptr(), to_at.raw(), to.as_ptr()) })
        .map(drop)
}

/// linkat(2), not following a symlink at `from`.
pub(crate) fn link_at(from_at: At, from: &OsStr, to_at: At, to: &OsStr) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: both names are live NUL-terminated strings.
    check(unsafe { libc::linkat(from_at.raw(), from.as_ptr(), to_at.raw(), to.as_ptr(), 0) })
        .map(drop)
}

/// unlinkat(2) of a file (not a folder).
pub(crate) fn unlink_at(at: At, name: &OsStr) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: `name` is a live NUL-terminated string.
    check(unsafe { libc::unlinkat(at.raw(), name.as_ptr(), 0) }).map(drop)
}

/// What `name` in `at` is, not following a symlink: its `st_mode` file type bits, or
/// `None` if there is nothing by that name.
pub(crate) fn kind_at(at: At, name: &OsStr) -> io::Result<Option<libc::mode_t>> {
    let name = c_name(name)?;
    // SAFETY: an all-zero `stat` is a valid value for fstatat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a live NUL-terminated string and `st` a live stat to fill.
    let ret = unsafe { libc::fstatat(at.raw(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    match check(ret) {
        Ok(_) => Ok(Some(st.st_mode & libc::S_IFMT)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_start_time_and_parent() {
        let me = std::process::id();
        let t = start_time(me).expect("a start time for this process");
        assert_eq!(start_time(me), Some(t));
        assert_eq!(start_time(u32::MAX - 1), None);
        assert_eq!(parent_pid(me), Some(std::os::unix::process::parent_id()));
    }

    #[test]
    fn a_child_started_within_one_tick_has_that_start_time() {
        let mut agreed = 0;
        for _ in 0..20 {
            let before = boot_ticks();
            let mut child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let after = boot_ticks();
            if before == after {
                assert_eq!(start_time(child.id()), Some(before));
                agreed += 1;
            }
            child.kill().unwrap();
            child.wait().unwrap();
        }
        assert!(agreed > 0, "no spawn fell within one clock tick");
    }

    #[test]
    fn a_file_open_for_writing_elsewhere_has_a_writer() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, "x").unwrap();
        let reader = File::open(&path).unwrap();
        assert!(!has_writer(&reader));
        let _writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert!(has_writer(&reader));
    }
}

/// The Landlock ABI version the running kernel offers, or `None` where it has none
/// (too old, or Landlock not enabled at boot).
pub(crate) fn landlock_abi() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: landlock_create_ruleset with a null attribute, size 0 and the VERSION flag
    // only returns the ABI version; no memory is read or written, no fd is made.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (abi > 0).then_some(abi as u32)
}

/// Marks every descriptor from 3 up close-on-exec: those this process inherited would
/// otherwise pass on to every agent it starts, and an inherited writable descriptor
/// reaches past any sandbox (Landlock checks a file when it is opened).
pub(crate) fn close_inherited_on_exec() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors in
    // the range; no memory involved, no descriptor closed.
    let done = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    } == 0;
    if done {
        return;
    }
    // Kernels before 5.11: one descriptor at a time.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a descriptor number; a closed one only fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// Makes this process the child subreaper of everything it starts: a descendant
/// orphaned by its parent (a double fork, a `setsid` daemon) is reparented to it, not
/// to pid 1, so it can still be found and stopped. Best effort.
pub(crate) fn become_subreaper() -> bool {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes an integer flag; no memory involved.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) == 0 }
}

/// One process as /proc shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Proc {
    pub(crate) pid: u32,
    pub(crate) ppid: u32,
    pub(crate) pgid: u32,
    pub(crate) zombie: bool,
    /// Clock ticks since boot, as [`start_time`].
    pub(crate) start: u64,
}

/// Every process /proc lists now (those that vanish while it is read are left out).
pub(crate) fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fields = stat_fields(pid)?;
            Some(Proc {
                pid,
                zombie: fields.first()? == "Z",
                ppid: fields.get(1)?.parse().ok()?,
                pgid: fields.get(2)?.parse().ok()?,
                start: fields.get(19)?.parse().ok()?,
            })
        })
        .collect()
}

/// The values of `names` in the environment `pid` was started with (/proc/PID/environ),
/// in order; `None` for each it does not hold (or when it cannot be read).
pub(crate) fn environ_values<const N: usize>(pid: u32, names: [&str; N]) -> [Option<String>; N] {
    let mut values = [const { None }; N];
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return values;
    };
    for var in env.split(|&b| b == 0) {
        for (i, name) in names.iter().enumerate() {
            let value = var
                .strip_prefix(name.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="));
            if let Some(value) = value {
                values[i] = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    values
}

/// Collects the exit status of `pid`, a child of this process that has ended, so it
/// does not stay a zombie. False if it has not ended (or is not our child).
pub(crate) fn reap(pid: u32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid on one pid with WNOHANG writes one int through a live pointer.
    unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) == pid as i32 }
}

/// The pids of the children of this process's main thread, from
/// /proc/self/task/<pid>/children, or, where the kernel does not offer that file, of
/// the whole process, from a scan of every process.
///
/// The main thread's are the ones that matter to a child subreaper: the kernel hands an
/// orphan to the first live thread of the reaper, its main thread while it lives (and
/// a child of a thread that exits likewise). Children spawned by other threads are
/// theirs, and are the agents, which the caller knows. One read, not one per thread:
/// this runs at the end of every attempt.
pub(crate) fn main_thread_children() -> Vec<u32> {
    let me = std::process::id();
    match std::fs::read_to_string(format!("/proc/self/task/{me}/children")) {
        Ok(list) => list
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .collect(),
        Err(_) => processes()
            .into_iter()
            .filter(|p| p.ppid == me)
            .map(|p| p.pid)
            .collect(),
    }
}
