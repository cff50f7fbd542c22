//! What each file's stat said when the daemon last hashed it, so a restart over
//! unchanged files checks them by `stat` instead of reading them all (as git's index
//! does, with its care for racy timestamps). Not derived from the journal: a cache the
//! store keeps beside what is, lost harmlessly with a rebuild (every file is hashed once).

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::Store;
use crate::workspace::RelPath;

/// A change within this long before the hash may share its timestamp with a write the
/// hash missed (coarse file-system clocks): such a file is hashed again next time.
const RACY_NS: i64 = 2_000_000_000;

/// [`RACY_NS`]; tests of debug builds may shorten it (`BATON_RACY_WINDOW_MS`), so they
/// need not wait it out.
fn racy_ns() -> i64 {
    if cfg!(debug_assertions) {
        if let Some(ms) = std::env::var("BATON_RACY_WINDOW_MS")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
        {
            return ms * 1_000_000;
        }
    }
    RACY_NS
}

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
}

impl Stat {
    pub(crate) fn of(meta: &Metadata) -> Stat {
        Stat {
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            ino: meta.ino(),
        }
    }
}

/// A file's stat when its content, `hash`, was read, under the config `config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) stat: Stat,
    pub(crate) hash: String,
    seen_ns: i64,
    config: String,
}

impl Seen {
    /// Seen now: the file had `stat` and content `hash`. `None` if it changed within the
    /// racy window, so that this could never vouch for it: nothing is worth keeping.
    pub(crate) fn now(stat: Stat, hash: String, config: &str) -> Option<Seen> {
        let seen_ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let seen = Seen {
            stat,
            hash,
            seen_ns,
            config: config.to_string(),
        };
        seen.vouches_for(&stat, config).then_some(seen)
    }

    /// Whether a file that has `stat` now still holds `hash`, with nothing routed
    /// differently since: same stat, same config, and not changed so close to the
    /// hash that a later write could share its timestamps.
    pub(crate) fn vouches_for(&self, stat: &Stat, config: &str) -> bool {
        self.stat == *stat
            && self.config == config
            && self.stat.mtime_ns.max(self.stat.ctime_ns) + racy_ns() < self.seen_ns
    }
}

/// Checks files against what was seen, on a connection of its own, a read transaction
/// at a time: a walk over many files asks the store once per file without taking the
/// ledger's lock or SQLite's file locks for each.
pub(crate) struct SeenCheck {
    store: Store,
    /// Checks made in the current read transaction.
    in_transaction: usize,
}

/// How much of the store [`SeenCheck::seen_among`] maps to scan it.
const SCAN_MMAP: i64 = 1 << 30;

/// Checks per read transaction, so the daemon's writes can be checkpointed meanwhile.
const CHECKS_PER_TRANSACTION: usize = 4096;

impl SeenCheck {
    pub(crate) fn open(ws: &crate::workspace::Workspace) -> Result<SeenCheck> {
        Ok(SeenCheck {
            store: Store::connect(ws, &super::store_path(ws))?,
            in_transaction: 0,
        })
    }

    /// Ends the read transaction under way, so the connection can wait for the next
    /// batch without holding back the store's checkpoints.
    pub(crate) fn end_transaction(&mut self) -> Result<()> {
        if self.in_transaction > 0 {
            self.in_transaction = 0;
            self.store.conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// Whether the file at `path`, with `stat` now, holds what the journal has as its
    /// version and was routed under `config`, as the stat seen at its last hash vouches.
    pub(crate) fn unchanged(&mut self, path: &RelPath, stat: &Stat, config: &str) -> Result<bool> {
        if self.in_transaction == 0 {
            self.store.conn.execute_batch("BEGIN")?;
        }
        self.in_transaction += 1;
        let found = self.store.seen_with_version(path);
        if self.in_transaction >= CHECKS_PER_TRANSACTION {
            self.in_transaction = 0;
            self.store.conn.execute_batch("COMMIT")?;
        }
        Ok(match found? {
            Some((seen, Some(version))) => seen.vouches_for(stat, config) && seen.hash == version,
            _ => false,
        })
    }
}

impl SeenCheck {
    /// For each of `paths` (in name order), whether the store has seen a file there: one
    /// ordered scan of what it has seen, merged with them.
    pub(crate) fn seen_among(&mut self, paths: &[RelPath]) -> Result<Vec<bool>> {
        // Mapped while it scans: a third of the time of reading the pages one by one.
        self.store
            .conn
            .pragma_update(None, "mmap_size", SCAN_MMAP)?;
        let seen = self.merge_seen(paths);
        self.store.conn.pragma_update(None, "mmap_size", 0)?;
        seen
    }

    fn merge_seen(&mut self, paths: &[RelPath]) -> Result<Vec<bool>> {
        let mut stmt = self
            .store
            .conn
            .prepare_cached("SELECT path FROM seen ORDER BY path")?;
        let mut rows = stmt.query([])?;
        let mut next = || -> Result<Option<String>> {
            Ok(match rows.next()? {
                Some(row) => Some(row.get(0)?),
                None => None,
            })
        };
        let mut at = next()?;
        let mut seen = Vec::with_capacity(paths.len());
        for path in paths {
            while at.as_deref().is_some_and(|s| s < path.as_str()) {
                at = next()?;
            }
            seen.push(at.as_deref() == Some(path.as_str()));
        }
        Ok(seen)
    }
}

impl Store {
    /// What was seen at `path`, and the hash of the journal's last version of it.
    fn seen_with_version(&self, path: &RelPath) -> Result<Option<(Seen, Option<String>)>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT size, mtime_ns, ctime_ns, ino, hash, seen_ns, config,
                        (SELECT v.hash FROM versions v WHERE v.path = s.path
                         ORDER BY v.seq DESC LIMIT 1)
                 FROM seen s WHERE path = ?1",
            )?
            .query_row([path.as_str()], |r| {
                Ok((
                    Seen {
                        stat: Stat {
                            size: r.get::<_, i64>(0)? as u64,
                            mtime_ns: r.get(1)?,
                            ctime_ns: r.get(2)?,
                            ino: r.get::<_, i64>(3)? as u64,
                        },
                        hash: r.get(4)?,
                        seen_ns: r.get(5)?,
                        config: r.get(6)?,
                    },
                    r.get(7)?,
                ))
            })
            .optional()?)
    }

    /// Records what was seen, in one transaction.
    pub(crate) fn record_seen(&self, seen: &[(RelPath, Seen)]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO seen(path, size, mtime_ns, ctime_ns, ino, hash, seen_ns, config)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (path, s) in seen {
                put.execute(params![
                    path.as_str(),
                    s.stat.size as i64,
                    s.stat.mtime_ns,
                    s.stat.ctime_ns,
                    s.stat.ino as i64,
                    s.hash,
                    s.seen_ns,
                    s.config
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Workspace;

    #[test]
    fn seen_among_merges_the_paths_with_what_the_store_has_seen() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        let mut check = SeenCheck::open(&ws).unwrap();
        let rel = |p: &str| RelPath::new(p).unwrap();
        let seen = |p: &str| {
            (
                rel(p),
                Seen {
                    stat: stat(1),
                    hash: "h".into(),
                    seen_ns: 1,
                    config: "c".into(),
                },
            )
        };
        // Seen, and gone since ("briefs/0.md"), and beyond the last path asked about.
        check
            .store
            .record_seen(&[
                seen("briefs/0.md"),
                seen("briefs/b.md"),
                seen("drafts/z.md"),
                seen("zz/x"),
            ])
            .unwrap();
        let mut paths: Vec<RelPath> = ["briefs/a.md", "briefs/b.md", "briefs/c.md", "drafts/z.md"]
            .into_iter()
            .map(rel)
            .collect();
        paths.sort();
        assert_eq!(
            check.seen_among(&paths).unwrap(),
            [false, true, false, true]
        );
        assert!(check.seen_among(&[]).unwrap().is_empty());
    }

    fn stat(mtime_ns: i64) -> Stat {
        Stat {
            size: 10,
            mtime_ns,
            ctime_ns: mtime_ns,
            ino: 7,
        }
    }

    #[test]
    fn a_stat_vouches_only_when_unchanged_not_racy_and_under_the_same_config() {
        let old = Seen {
            stat: stat(1_000),
            hash: "h".into(),
            seen_ns: 1_000 + RACY_NS + 1,
            config: "c".into(),
        };
        assert!(old.vouches_for(&stat(1_000), "c"));
        assert!(!old.vouches_for(&stat(1_001), "c"), "another mtime");
        assert!(
            !old.vouches_for(
                &Stat {
                    ino: 8,
                    ..stat(1_000)
                },
                "c"
            ),
            "another file"
        );
        assert!(
            !old.vouches_for(
                &Stat {
                    size: 11,
                    ..stat(1_000)
                },
                "c"
            ),
            "another size"
        );
        assert!(
            !old.vouches_for(&stat(1_000), "c2"),
            "another config routes differently"
        );
        let racy = Seen {
            seen_ns: 1_000 + RACY_NS,
            ..old
        };
        assert!(
            !racy.vouches_for(&stat(1_000), "c"),
            "hashed too soon after a change"
        );
    }
}
