//! Workspace files opened, made and replaced without following a symlink anywhere on
//! the way (issue 13): each folder of a path is opened from the one before with
//! `O_NOFOLLOW|O_DIRECTORY`, so neither a path a user or agent gives nor a symlink
//! swapped in under a stage reaches outside the workspace, and the folder found is the
//! folder written in (no check-then-use race). Files are opened `O_NONBLOCK` and must be
//! regular, so a FIFO or device under an artifact's name is refused instead of blocking
//! or flooding the reader; and they are read no further than the size seen on opening.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::sys::{self, At};
use crate::workspace::RelPath;

/// The folder an artifact's file is in, opened beneath the workspace root, and the
/// file's name in it.
pub(crate) struct Parent {
    pub(crate) dir: File,
    /// The folder's absolute path, for messages and for syncing.
    pub(crate) path: PathBuf,
    pub(crate) name: OsString,
    /// Folders this call made, outermost first: their parents' entries changed.
    pub(crate) made: Vec<PathBuf>,
}

impl Parent {
    pub(crate) fn at(&self) -> At<'_> {
        At::Dir(self.dir.as_fd())
    }
}

fn refused(kind: io::ErrorKind, shown: &str, why: &str) -> io::Error {
    io::Error::new(kind, format!("`{shown}` {why}"))
}

/// Why `err`, from opening `shown` without following links, refuses it.
fn explain(err: io::Error, shown: &str) -> io::Error {
    match err.raw_os_error() {
        Some(libc::ELOOP) => refused(
            io::ErrorKind::InvalidInput,
            shown,
            "is a symbolic link; baton never follows links inside the workspace",
        ),
        Some(libc::ENOTDIR) => refused(io::ErrorKind::InvalidInput, shown, "is not a folder"),
        _ => err,
    }
}

/// Opens the folder that `rel` is in, beneath `root`, following no symlink. With
/// `make`, missing folders are made; without, `Ok(None)` says one is missing.
pub(crate) fn parent(root: &Path, rel: &RelPath, make: bool) -> io::Result<Option<Parent>> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let mut dir: OwnedFd = sys::open_at(At::Cwd, root.as_os_str(), flags, 0)?;
    let mut path = root.to_path_buf();
    let mut made = Vec::new();
    let parts: Vec<&str> = rel.as_str().split('/').collect();
    let (name, folders) = parts.split_last().expect("a RelPath has a name");
    for (i, part) in folders.iter().enumerate() {
        let part = OsStr::new(part);
        path.push(part);
        let shown = parts[..=i].join("/");
        let opened = match sys::open_at(At::Dir(dir.as_fd()), part, flags, 0) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && make => {
                match sys::mkdir_at(At::Dir(dir.as_fd()), part, 0o777) {
                    Ok(()) => made.push(path.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
                sys::open_at(At::Dir(dir.as_fd()), part, flags, 0)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            other => other,
        };
        dir = match opened {
            Ok(opened) => opened,
            // O_DIRECTORY is checked before O_NOFOLLOW: a symlink says ENOTDIR too.
            Err(_) if sys::kind_at(At::Dir(dir.as_fd()), part)? == Some(libc::S_IFLNK) => {
                return Err(explain(io::Error::from_raw_os_error(libc::ELOOP), &shown));
            }
            Err(e) => return Err(explain(e, &shown)),
        };
    }
    Ok(Some(Parent {
        dir: File::from(dir),
        path,
        name: OsString::from(*name),
        made,
    }))
}

/// What kind of file is at `rel` (not following a symlink), if any.
pub(crate) fn kind(root: &Path, rel: &RelPath) -> io::Result<Option<libc::mode_t>> {
    match parent(root, rel, false)? {
        Some(p) => sys::kind_at(p.at(), &p.name),
        None => Ok(None),
    }
}

/// A regular file opened for reading, and its size when opened: read it through
/// [`Opened::reader`], which stops there.
pub(crate) struct Opened {
    pub(crate) file: File,
    pub(crate) size: u64,
}

impl Opened {
    /// The file's bytes up to the size seen on opening: a file that grows meanwhile (a
    /// symlink to `/dev/zero` cannot get here) is not read without end.
    pub(crate) fn reader(&self) -> io::Take<&File> {
        (&self.file).take(self.size)
    }

    /// The file's bytes, up to the size seen on opening.
    pub(crate) fn bytes(&self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.reader().read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// Opens `name` in `at` for reading: not following a symlink there, not blocking on a
/// FIFO, and only if it is a regular file.
pub(crate) fn open_regular_at(at: At, name: &OsStr, shown: &str) -> io::Result<Opened> {
    open_checked(at, name, libc::O_NOFOLLOW, shown)
}

fn open_checked(at: At, name: &OsStr, extra: libc::c_int, shown: &str) -> io::Result<Opened> {
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | extra;
    let file = File::from(sys::open_at(at, name, flags, 0).map_err(|e| explain(e, shown))?);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused(
            io::ErrorKind::InvalidInput,
            shown,
            &format!("is {}, not a regular file", describe(&meta)),
        ));
    }
    Ok(Opened {
        size: meta.len(),
        file,
    })
}

/// Opens the artifact at `rel` beneath `root` for reading (see [`open_regular_at`]).
pub(crate) fn open(root: &Path, rel: &RelPath) -> io::Result<Opened> {
    let shown = rel.as_str();
    let parent = parent(root, rel, false)?
        .ok_or_else(|| refused(io::ErrorKind::NotFound, shown, "does not exist"))?;
    open_regular_at(parent.at(), &parent.name, shown)
}

/// Opens the file at `path` for reading, anywhere (a file `baton drop` is given, one in
/// a staging tree): a symlink there is followed only with `follow`; a FIFO, device or
/// socket is refused without blocking.
pub(crate) fn open_path(path: &Path, follow: bool) -> io::Result<Opened> {
    let extra = if follow { 0 } else { libc::O_NOFOLLOW };
    open_checked(
        At::Cwd,
        path.as_os_str(),
        extra,
        &path.display().to_string(),
    )
}

/// "a FIFO", "a folder", … for messages.
pub(crate) fn describe(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}
