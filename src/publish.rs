//! Making a new version of an artifact visible, atomically (DESIGN §4.4): fsync the new
//! file, keep the version it replaces in `objects/` (a hard link, by content hash),
//! rename the new file over the path, fsync the folders. [`replace`] is shared by the
//! daemon's commit, `baton drop` and `baton write`, whose callers hold the path's
//! exclusive lock and journal; [`publish`] does all of it for one file at once.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::journal::{Appender, Attribution, Durability, Record};
use crate::lock::{self, Mode};
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
        replaced: Option<String>,
    },
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
    ws.ensure_state_dirs()?;
    let (staged, hash, size) = stage_copy(ws, content)?;
    let _guard = lock::lock_unless_held(ws, target, Mode::Exclusive)?;
    let current = hash_file(&ws.abs(target)).ok().map(|(h, _)| h);
    if current.as_deref() == Some(hash.as_str()) {
        let _ = std::fs::remove_file(&staged);
        return Ok(Published::Unchanged { hash });
    }
    let dirs = replace(ws, &staged, target)?;
    sync_dirs(&dirs)?;
    let record = Record::artifact(target.clone(), hash.clone(), size, who);
    Appender::open_at_end(ws)?.append(vec![record], Durability::Synced)?;
    Ok(Published::New {
        hash,
        replaced: current,
    })
}

/// The blake3 hash (hex) and size of a file's content.
pub(crate) fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    hash_reader(&mut file)
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

/// Keeps the current content of `target` (if it is a file) as `objects/<hash>`, by hard
/// link where possible. Returns the kept version's hash.
pub(crate) fn keep_old_version(ws: &Workspace, target: &Path) -> Result<Option<String>> {
    match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", target.display())),
    }
    let (hash, _) = hash_file(target).with_context(|| format!("hashing {}", target.display()))?;
    let object = ws.objects_dir().join(&hash);
    if !object.exists() {
        std::fs::create_dir_all(ws.objects_dir())?;
        if std::fs::hard_link(target, &object).is_err() {
            std::fs::copy(target, &object).with_context(|| {
                format!(
                    "keeping the old version of {} in {}",
                    target.display(),
                    object.display()
                )
            })?;
            fsync_file(&object)?;
        }
    }
    Ok(Some(hash))
}

/// Renames the already-synced file `staged` over `target`, keeping the old version
/// first. Returns the folders whose entries changed, for [`sync_dirs`].
pub(crate) fn replace(
    ws: &Workspace,
    staged: &Path,
    target: &RelPath,
) -> Result<BTreeSet<PathBuf>> {
    let abs = ws.abs(target);
    let parent = abs
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ws.root.clone());
    let mut dirs = BTreeSet::new();
    if !parent.is_dir() {
        // Sync each new folder's parent too, so the folders themselves are durable.
        let mut missing = parent.as_path();
        while !missing.exists() {
            if let Some(up) = missing.parent() {
                dirs.insert(up.to_path_buf());
                missing = up;
            } else {
                break;
            }
        }
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    if keep_old_version(ws, &abs)?.is_some() {
        dirs.insert(ws.objects_dir());
    }
    if let Err(e) = std::fs::rename(staged, &abs) {
        if e.raw_os_error() != Some(libc::EXDEV) {
            return Err(e)
                .with_context(|| format!("renaming {} over {}", staged.display(), abs.display()));
        }
        // Another file system: copy next to the target (a dotfile, never an artifact),
        // then rename, so the target still changes in one step.
        let tmp = parent.join(format!(".{}.baton-tmp", target.file_name()));
        std::fs::copy(staged, &tmp)
            .with_context(|| format!("copying {} to {}", staged.display(), tmp.display()))?;
        fsync_file(&tmp)?;
        std::fs::rename(&tmp, &abs)
            .with_context(|| format!("renaming {} over {}", tmp.display(), abs.display()))?;
    }
    dirs.insert(parent);
    Ok(dirs)
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
    let mut tee = TeeHasher {
        inner: src,
        hasher: blake3::Hasher::new(),
        size: 0,
    };
    io::copy(&mut tee, &mut out).with_context(|| format!("writing {}", tmp.display()))?;
    out.sync_all()?;
    Ok((tmp, tee.hasher.finalize().to_hex().to_string(), tee.size))
}

struct TeeHasher<'a, R> {
    inner: &'a mut R,
    hasher: blake3::Hasher,
    size: u64,
}

impl<R: Read> Read for TeeHasher<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}
