//! Making a new version of an artifact visible, atomically (DESIGN §4.4): fsync the new
//! file, keep the version it replaces in `objects/` (a hard link, by content hash),
//! rename the new file over the path, fsync the folders. [`replace`] is shared by the
//! daemon's commit, `baton drop` and `baton write`, whose callers hold the path's
//! exclusive lock and journal; [`publish`] does all of it for one file at once.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::beneath::{self, Parent};
use crate::journal::{Appender, Attribution, Durability, Record};
use crate::lock::{self, Mode};
use crate::sys::{self, At};
use crate::workspace::{RelPath, Workspace};

/// What [`publish`] did.
#[derive(Debug, PartialEq)]
pub(crate) enum Published {
    /// The path held exactly this content already: nothing was written.
    Unchanged { hash: String },
    /// A new version, of content `hash`; `replaced` is the hash of the version it
    /// replaced (kept in `objects/`), if there was one.
    New {
        hash: String,
        size: u64,
        replaced: Option<String>,
    },
    /// The path did not hold the version the writer expected (it holds `current`):
    /// nothing was written.
    Stale { current: Option<String> },
}

/// Publishes what `content` yields at `target` atomically, under the path's exclusive
/// lock (unless an enclosing `baton lock` holds it), journalled (fsynced) as written by
/// `who` before the lock is released, so the daemon's ingest attributes it.
pub(crate) fn publish(
    ws: &Workspace,
    target: &RelPath,
    content: &mut impl Read,
    who: Attribution,
) -> Result<Published> {
    publish_expecting(ws, target, content, who, None)
}

/// [`publish`], only if `target` holds version `expected` when the lock is taken
/// (`Some("")`: only if there is no file there), else [`Published::Stale`].
pub(crate) fn publish_expecting(
    ws: &Workspace,
    target: &RelPath,
    content: &mut impl Read,
    who: Attribution,
    expected: Option<&str>,
) -> Result<Published> {
    ws.ensure_state_dirs()?;
    let (staged, hash, size) = stage_copy(ws, content)?;
    let _guard = lock::lock_unless_held(ws, target, Mode::Exclusive)?;
    let current = hash_artifact(ws, target).ok().map(|(h, _)| h);
    if expected.is_some_and(|e| e != current.as_deref().unwrap_or_default()) {
        let _ = std::fs::remove_file(&staged);
        return Ok(Published::Stale { current });
    }
    if current.as_deref() == Some(hash.as_str()) {
        let _ = std::fs::remove_file(&staged);
        return Ok(Published::Unchanged { hash });
    }
    let (dirs, _) = replace(ws, &staged, target)?;
    sync_dirs(&dirs)?;
    let record = Record::artifact(target.clone(), hash.clone(), size, who);
    Appender::open_at_end(ws)?.append(vec![record], Durability::Synced)?;
    Ok(Published::New {
        hash,
        size,
        replaced: current,
    })
}

/// The blake3 hash (hex) and size of the regular file at `path` (a symlink there is not
/// followed; a FIFO or device is refused), read no further than its size on opening.
pub(crate) fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    hash_reader(&mut beneath::open_path(path, false)?.reader())
}

/// [`hash_file`] of the artifact at `target`, reached without following any symlink.
pub(crate) fn hash_artifact(ws: &Workspace, target: &RelPath) -> io::Result<(String, u64)> {
    hash_reader(&mut beneath::open(&ws.root, target)?.reader())
}

pub(crate) fn hash_reader(reader: &mut impl Read) -> io::Result<(String, u64)> {
    hash_keeping_head(reader, 0).map(|(hash, size, _)| (hash, size))
}

/// Hashes everything `reader` yields in one pass, keeping its first `keep` bytes (for
/// the front matter at the top of an artifact).
pub(crate) fn hash_keeping_head(
    reader: &mut impl Read,
    keep: usize,
) -> io::Result<(String, u64, Vec<u8>)> {
    let mut hasher = blake3::Hasher::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if head.len() < keep {
            head.extend_from_slice(&buf[..n.min(keep - head.len())]);
        }
        size += n as u64;
    }
    Ok((hasher.finalize().to_hex().to_string(), size, head))
}

pub(crate) fn fsync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", path.display()))
}

pub(crate) fn fsync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing the folder {}", path.display()))
}

/// Keeps the current content of `name` in `parent` (if it is a regular file) as
/// `objects/<hash>`, by hard link where possible. Returns the kept version's hash.
fn keep_old_version(ws: &Workspace, parent: &Parent, shown: &str) -> Result<Option<String>> {
    match sys::kind_at(parent.at(), &parent.name).with_context(|| format!("inspecting {shown}"))? {
        Some(libc::S_IFREG) => {}
        Some(libc::S_IFDIR) => anyhow::bail!(folder_in_the_way(shown)),
        _ => return Ok(None), // nothing, or a symlink or FIFO the rename replaces
    }
    let opened = beneath::open_regular_at(parent.at(), &parent.name, shown)?;
    let (hash, _) =
        hash_reader(&mut opened.reader()).with_context(|| format!("hashing {shown}"))?;
    let object = ws.objects_dir().join(&hash);
    if !object.exists() {
        std::fs::create_dir_all(ws.objects_dir())?;
        let linked = sys::link_at(parent.at(), &parent.name, At::Cwd, object.as_os_str());
        if linked.is_err() {
            let tmp = object.with_extension("baton-tmp");
            let mut out = File::create(&tmp)?;
            io::copy(&mut opened.reader(), &mut out)
                .and_then(|_| out.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &object))
                .with_context(|| {
                    format!("keeping the old version of {shown} in {}", object.display())
                })?;
        }
    }
    Ok(Some(hash))
}

fn folder_in_the_way(shown: &str) -> String {
    format!("`{shown}` is a folder, where a file must go")
}

/// Whether the file `target` can be put in place: every folder on its way is a folder
/// (or missing, to be made), none a symlink, and no folder is where the file must go.
pub(crate) fn check_target(ws: &Workspace, target: &RelPath) -> Result<(), String> {
    match beneath::kind(&ws.root, target) {
        Ok(Some(libc::S_IFDIR)) => Err(folder_in_the_way(target.as_str())),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Renames the already-synced file `staged` over `target`, keeping the old version
/// first. Every folder on the way is opened beneath the workspace without following a
/// symlink (made if missing), and the rename is made in the folder so opened. Returns
/// the folders whose entries changed, for [`sync_dirs`], and the replaced version.
pub(crate) fn replace(
    ws: &Workspace,
    staged: &Path,
    target: &RelPath,
) -> Result<(BTreeSet<PathBuf>, Option<String>)> {
    let shown = target.as_str();
    let parent = beneath::parent(&ws.root, target, true)
        .with_context(|| format!("opening the folder of {shown}"))?
        .expect("folders are made");
    let mut dirs = BTreeSet::new();
    for made in &parent.made {
        // Each new folder's parent changed too, so the folders themselves are durable.
        dirs.extend(made.parent().map(Path::to_path_buf));
    }
    let replaced = keep_old_version(ws, &parent, shown)?;
    if replaced.is_some() {
        dirs.insert(ws.objects_dir());
    }
    if let Err(e) = sys::rename_at(At::Cwd, staged.as_os_str(), parent.at(), &parent.name) {
        if e.raw_os_error() != Some(libc::EXDEV) {
            return Err(e).with_context(|| format!("renaming {} over {shown}", staged.display()));
        }
        // Another file system: copy next to the target (a dotfile, never an artifact),
        // then rename, so the target still changes in one step.
        let tmp = OsString::from(format!(".{}.baton-tmp", target.file_name()));
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW;
        let copied = sys::open_at(parent.at(), &tmp, flags, 0o666)
            .map(File::from)
            .and_then(|mut out| {
                io::copy(&mut beneath::open_path(staged, false)?.reader(), &mut out)?;
                out.sync_all()
            })
            .and_then(|()| sys::rename_at(parent.at(), &tmp, parent.at(), &parent.name));
        copied.with_context(|| format!("copying {} over {shown}", staged.display()))?;
    }
    dirs.insert(parent.path);
    Ok((dirs, replaced))
}

/// Puts back what [`replace`] replaced at `target`: the version kept as
/// `objects/<hash>`, or nothing if there was none. For a commit that could not finish.
pub(crate) fn put_back(ws: &Workspace, target: &RelPath, replaced: Option<&str>) -> Result<()> {
    let shown = target.as_str();
    let parent = beneath::parent(&ws.root, target, false)?
        .with_context(|| format!("the folder of {shown} is gone"))?;
    match replaced {
        None => {
            sys::unlink_at(parent.at(), &parent.name).with_context(|| format!("removing {shown}"))
        }
        Some(hash) => {
            let object = ws.objects_dir().join(hash);
            let tmp = OsString::from(format!(".{}.baton-tmp", target.file_name()));
            let _ = sys::unlink_at(parent.at(), &tmp);
            sys::link_at(At::Cwd, object.as_os_str(), parent.at(), &tmp)
                .and_then(|()| sys::rename_at(parent.at(), &tmp, parent.at(), &parent.name))
                .with_context(|| format!("putting the earlier version of {shown} back"))
        }
    }
}

pub(crate) fn sync_dirs(dirs: &BTreeSet<PathBuf>) -> Result<()> {
    dirs.iter().try_for_each(|d| fsync_dir(d))
}

/// Copies `src` into the workspace's scratch folder and syncs it, ready for
/// [`replace`]. Returns the copy's path, hash and size.
pub(crate) fn stage_copy(ws: &Workspace, src: &mut impl Read) -> Result<(PathBuf, String, u64)> {
    std::fs::create_dir_all(ws.tmp_dir())?;
    let tmp = ws.tmp_dir().join(format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    ));
    let mut out = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut tee = Hashing::new(src);
    io::copy(&mut tee, &mut out).with_context(|| format!("writing {}", tmp.display()))?;
    out.sync_all()?;
    let size = tee.size;
    Ok((tmp, tee.finish(), size))
}

/// A reader that hashes what passes through it.
pub(crate) struct Hashing<'a, R> {
    inner: &'a mut R,
    hasher: blake3::Hasher,
    size: u64,
}

impl<'a, R: Read> Hashing<'a, R> {
    pub(crate) fn new(inner: &'a mut R) -> Self {
        Hashing {
            inner,
            hasher: blake3::Hasher::new(),
            size: 0,
        }
    }

    /// The hash (hex) of everything read.
    pub(crate) fn finish(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}
