//! Bringing the index in line with the stages.
//!
//! [`Store::catch_up`] compares each artifact's size and mtime (and, for `baton index`,
//! its content hash) with what the index holds and re-reads only what changed; paths
//! gone from disk are deleted. Into an empty index every file is streamed as a walk
//! finds it. [`Store::catch_up_folders`] is the cheap catch-up of a search without a
//! daemon: only the folders whose mtime moved since the [`FolderMap`] was saved are
//! listed. Authorship comes from the journal: the version it knows by hash, else
//! `external`.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tantivy::collector::DocSetCollector;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{TantivyDocument, Term};

use super::folders::{FolderMap, trusted};
use super::store::{Authorship, Indexed, Store, Writer, mtime_ns};
use crate::progress::Progress;
use crate::workspace::{RelPath, Workspace, walk_visible};

/// Where the index and the stages differ.
#[derive(Default)]
struct Diff {
    checked: usize,
    /// With the metadata the walk found, so the file is not looked up again.
    changed: Vec<(RelPath, Metadata)>,
    /// Of `changed`, the paths the index does not hold yet.
    new: std::collections::HashSet<RelPath>,
    changed_bytes: u64,
    removed: Vec<String>,
}

/// How closely a catch-up compares files with the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Size and mtime: cheap, misses an edit that keeps both.
    SizeAndTime,
    /// Size, mtime and the content hash (`baton index`).
    Content,
}

/// What a catch-up did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CatchUp {
    pub(crate) checked: usize,
    pub(crate) updated: usize,
    pub(crate) removed: usize,
}

impl Store {
    /// Brings the index up to the stages before a query, unless a daemon runs (it keeps
    /// the index current and owns its writer): cheaply by folder mtimes (only folders
    /// whose entries changed are listed), or fully when no folder map exists yet. So an
    /// answer is never silently stale.
    pub(crate) fn catch_up_for_query(
        &self,
        ws: &Workspace,
        cfg: &crate::config::Config,
    ) -> Result<()> {
        if crate::pidfile::running_daemon(ws).is_some() {
            return Ok(());
        }
        let authors = crate::journal::LazyAuthors::new(ws);
        let who = |path: &RelPath, hash: &str| authors.attribution_of(path, hash);
        if self
            .catch_up_folders(ws, &cfg.stages, &who, cfg.max_file_size)?
            .is_none()
        {
            self.catch_up(
                ws,
                &cfg.stages,
                &who,
                cfg.max_file_size,
                Check::SizeAndTime,
                Duration::from_secs(1),
            )?;
        }
        Ok(())
    }

    /// Brings the index in line with the stages, taking the writer only if something
    /// changed; commits. `check` says how closely; a progress bar appears on a terminal
    /// once the work has taken longer than `progress_after`.
    pub(crate) fn catch_up(
        &self,
        ws: &Workspace,
        stages: &[String],
        who: Authorship,
        max_size: u64,
        check: Check,
        progress_after: Duration,
    ) -> Result<CatchUp> {
        // The walk records each folder's mtime before listing it, so whatever changes
        // during the walk shows next time.
        let mut folders = FolderMap::default();
        let indexed = self.indexed()?;
        if indexed.is_empty() {
            let report = self.index_all(ws, stages, &mut folders, who, max_size, progress_after)?;
            folders.save(ws)?;
            return Ok(report);
        }
        let diff = self.diff(ws, stages, &mut folders, check, indexed, progress_after)?;
        if diff.changed.is_empty() && diff.removed.is_empty() {
            folders.save(ws)?;
            return Ok(CatchUp {
                checked: diff.checked,
                ..CatchUp::default()
            });
        }
        let mut writer = self.writer_for(diff.changed_bytes)?;
        let mut progress = Progress::bytes(
            "indexing",
            diff.changed.len() as u64,
            diff.changed_bytes,
            progress_after,
        );
        let report = self.apply(&mut writer, ws, diff, who, max_size, Some(&mut progress))?;
        writer.commit().context("committing the search index")?;
        progress.finish();
        folders.save(ws)?;
        Ok(report)
    }

    /// Brings the index in line with the stages through `writer` (not committed).
    pub(crate) fn catch_up_with(
        &self,
        writer: &mut Writer,
        ws: &Workspace,
        stages: &[String],
        who: Authorship,
        max_size: u64,
    ) -> Result<CatchUp> {
        let diff = self.diff(
            ws,
            stages,
            &mut FolderMap::default(),
            Check::SizeAndTime,
            self.indexed()?,
            Duration::MAX,
        )?;
        self.apply(writer, ws, diff, who, max_size, None)
    }

    /// Indexes every file of the stages into an empty index (a first build or a
    /// rebuild). No diff is needed, so files are indexed as the walk finds them, the
    /// walk running on a thread of its own beside tantivy's.
    fn index_all(
        &self,
        ws: &Workspace,
        stages: &[String],
        folders: &mut FolderMap,
        who: Authorship,
        max_size: u64,
        progress_after: Duration,
    ) -> Result<CatchUp> {
        // Everything is new: the largest budget, for the fewest segments.
        let mut writer = self.writer_for(u64::MAX)?;
        let mut progress = Progress::bytes("indexing", 0, 0, progress_after);
        // Files go over in batches: one at a time, the walker and the reader would wake
        // each other for every file.
        const BATCH: usize = 256;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(RelPath, Metadata)>>(4);
        let mut checked = 0;
        std::thread::scope(|scope| -> Result<()> {
            scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                walk_stages(ws, stages, folders, |rel, meta| {
                    batch.push((rel, meta));
                    if batch.len() < BATCH {
                        return true;
                    }
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    tx.send(full).is_ok() // an error: indexing stopped
                });
                let _ = tx.send(batch);
            });
            for batch in rx {
                progress.grow(
                    batch.len() as u64,
                    batch.iter().map(|(_, meta)| meta.len()).sum(),
                );
                for (rel, meta) in batch {
                    checked += 1;
                    self.add(&mut writer, ws, &rel, Some(&meta), who, max_size)?;
                    progress.file(meta.len());
                }
            }
            Ok(())
        })?;
        writer.commit().context("committing the search index")?;
        progress.finish();
        Ok(CatchUp {
            checked,
            updated: checked,
            removed: 0,
        })
    }

    /// What differs between the index (`indexed`) and the stages.
    fn diff(
        &self,
        ws: &Workspace,
        stages: &[String],
        folders: &mut FolderMap,
        check: Check,
        mut indexed: HashMap<String, Indexed>,
        progress_after: Duration,
    ) -> Result<Diff> {
        let mut diff = Diff::default();
        // Unchanged by size and mtime, with the content hash the index holds.
        let mut same: Vec<(RelPath, Metadata, String)> = Vec::new();
        walk_stages(ws, stages, folders, |rel, meta| {
            diff.checked += 1;
            // What is left in `indexed` after the walk is gone from disk.
            match indexed.remove(rel.as_str()) {
                Some(i) if i.size == meta.len() && i.mtime_ns == mtime_ns(&meta) => {
                    same.push((rel, meta, i.hash));
                }
                known => {
                    diff.changed_bytes += meta.len();
                    if known.is_none() {
                        diff.new.insert(rel.clone());
                    }
                    diff.changed.push((rel, meta));
                }
            }
            true
        });
        if check == Check::Content {
            // Size and mtime can stay the same across an edit: compare the content hash.
            let total = same.iter().map(|(_, meta, _)| meta.len()).sum();
            let mut progress =
                Progress::bytes("checking", same.len() as u64, total, progress_after);
            for (rel, meta, known) in same {
                let hash = crate::publish::hash_file(&ws.abs(&rel))
                    .map(|(h, _)| h)
                    .unwrap_or_default();
                progress.file(meta.len());
                if hash != known {
                    diff.changed_bytes += meta.len();
                    diff.changed.push((rel, meta));
                }
            }
            progress.finish();
        }
        diff.removed = indexed.into_keys().collect();
        Ok(diff)
    }

    fn apply(
        &self,
        writer: &mut Writer,
        ws: &Workspace,
        diff: Diff,
        who: Authorship,
        max_size: u64,
        mut progress: Option<&mut Progress>,
    ) -> Result<CatchUp> {
        for (rel, meta) in &diff.changed {
            if diff.new.contains(rel) {
                self.add(writer, ws, rel, Some(meta), who, max_size)?;
            } else {
                self.upsert(writer, ws, rel, Some(meta), who, max_size)?;
            }
            if let Some(p) = progress.as_deref_mut() {
                p.file(meta.len());
            }
        }
        for path in &diff.removed {
            writer.delete_term(Term::from_field_text(self.schema.fields.path, path));
        }
        Ok(CatchUp {
            checked: diff.checked,
            updated: diff.changed.len(),
            removed: diff.removed.len(),
        })
    }

    /// The cheap catch-up; `None` when there is no folder map yet (then do a full one).
    /// Commits, and saves the new folder map, if anything changed.
    pub(crate) fn catch_up_folders(
        &self,
        ws: &Workspace,
        stages: &[String],
        who: Authorship,
        max_size: u64,
    ) -> Result<Option<CatchUp>> {
        let Some(mut map) = FolderMap::load(ws) else {
            return Ok(None);
        };
        let mut changed: Vec<(String, u64)> = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        let known: Vec<(&String, &u64)> = map.folders.iter().collect();
        let stats = super::fanout::map(&known, |(dir, _)| {
            std::fs::metadata(ws.root.join(dir))
                .ok()
                .filter(|m| m.is_dir())
                .map(|m| mtime_ns(&m))
        });
        for ((dir, old), now) in known.into_iter().zip(stats) {
            match now {
                Some(now) if now != *old => changed.push((dir.clone(), now)),
                Some(_) => {}
                None => gone.push(dir.clone()),
            }
        }
        for stage in stages.iter().filter(|s| !map.folders.contains_key(*s)) {
            if let Ok(meta) = std::fs::metadata(ws.root.join(stage)) {
                changed.push((stage.clone(), mtime_ns(&meta)));
            }
        }
        let mut report = CatchUp {
            checked: map.folders.len(),
            ..CatchUp::default()
        };
        if changed.is_empty() && gone.is_empty() {
            return Ok(Some(report));
        }
        // Taken only once a file differs: a folder whose mtime moved without a change
        // to its files (a file renamed away and back, a racy mtime listed again) costs
        // a listing, not a writer and an empty commit.
        let mut writer = LazyWriter {
            store: self,
            writer: None,
        };
        for dir in &gone {
            if let Ok(rel) = RelPath::new(dir) {
                self.remove(writer.get()?, &rel)?;
            }
            map.forget_tree(dir);
        }
        let reader = self.reader()?;
        let searcher = reader.searcher();
        for (dir, mtime) in changed {
            let new_dirs = self.relist(
                &mut writer,
                &searcher,
                ws,
                &dir,
                &map,
                who,
                max_size,
                &mut report,
            )?;
            map.folders.insert(dir, trusted(mtime));
            for sub in new_dirs {
                map.add_tree(ws, &sub);
                report.updated += self.index_tree(&mut writer, ws, &sub, who, max_size)?;
            }
        }
        if let Some(mut writer) = writer.writer {
            writer.commit().context("committing the search index")?;
        }
        map.save(ws)?;
        Ok(Some(report))
    }

    /// Compares one folder's files with the index; returns its subfolders the map does
    /// not know (new ones).
    #[allow(clippy::too_many_arguments)]
    fn relist(
        &self,
        writer: &mut LazyWriter,
        searcher: &tantivy::Searcher,
        ws: &Workspace,
        dir: &str,
        map: &FolderMap,
        who: Authorship,
        max_size: u64,
        report: &mut CatchUp,
    ) -> Result<Vec<String>> {
        let f = &self.schema.fields;
        let query = TermQuery::new(
            Term::from_field_text(f.folder, dir),
            IndexRecordOption::Basic,
        );
        let mut indexed: HashMap<String, Indexed> = HashMap::new();
        for address in searcher.search(&query, &DocSetCollector)? {
            let doc: TantivyDocument = searcher.doc(address)?;
            let (path, known) = Indexed::from_doc(f, &doc);
            indexed.insert(path, known);
        }
        let mut present = HashSet::new();
        let mut new_dirs = Vec::new();
        let entries =
            std::fs::read_dir(ws.root.join(dir)).with_context(|| format!("listing {dir}"))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let rel = format!("{dir}/{name}");
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !map.folders.contains_key(&rel) {
                    new_dirs.push(rel);
                }
                continue;
            }
            let Ok(path) = RelPath::new(&rel) else {
                continue;
            };
            if !kind.is_file() || path.is_ignored() {
                continue;
            }
            present.insert(rel.clone());
            let Ok(meta) = entry.metadata() else { continue };
            if !indexed
                .get(&rel)
                .is_some_and(|i| i.size == meta.len() && i.mtime_ns == mtime_ns(&meta))
            {
                self.upsert(writer.get()?, ws, &path, None, who, max_size)?;
                report.updated += 1;
            }
        }
        for path in indexed.keys().filter(|p| !present.contains(*p)) {
            writer
                .get()?
                .delete_term(Term::from_field_text(f.path, path));
            report.removed += 1;
        }
        Ok(new_dirs)
    }

    /// Indexes every file under a folder the index has never seen.
    fn index_tree(
        &self,
        writer: &mut LazyWriter,
        ws: &Workspace,
        dir: &str,
        who: Authorship,
        max_size: u64,
    ) -> Result<usize> {
        let mut n = 0;
        let walk = walk_visible(&ws.root.join(dir));
        for entry in walk.flatten().filter(|e| e.file_type().is_file()) {
            let Some(rel) = rel_of(ws, entry.path()) else {
                continue;
            };
            if !rel.is_ignored() {
                self.upsert(writer.get()?, ws, &rel, None, who, max_size)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The index writer, taken on first use.
struct LazyWriter<'a> {
    store: &'a Store,
    writer: Option<Writer>,
}

impl LazyWriter<'_> {
    fn get(&mut self) -> Result<&mut Writer> {
        match &mut self.writer {
            Some(writer) => Ok(writer),
            none => Ok(none.insert(self.store.writer()?)),
        }
    }
}

fn rel_of(ws: &Workspace, path: &Path) -> Option<RelPath> {
    RelPath::from_path(path.strip_prefix(&ws.root).ok()?).ok()
}

/// Walks the stages in path order: each file that is indexed (hidden and temporary
/// files are not) goes to `file` with its metadata, until `file` returns false; each
/// folder's mtime goes into `folders`, taken before the folder is listed.
fn walk_stages(
    ws: &Workspace,
    stages: &[String],
    folders: &mut FolderMap,
    mut file: impl FnMut(RelPath, Metadata) -> bool,
) {
    for stage in stages {
        for entry in walk_visible(&ws.root.join(stage)).flatten() {
            let Ok(rel) = entry.path().strip_prefix(&ws.root) else {
                continue;
            };
            if entry.file_type().is_dir() {
                folders.record(rel, &entry);
                continue;
            }
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = RelPath::from_path(rel) else {
                continue;
            };
            if rel.is_ignored() {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !file(rel, meta) {
                return;
            }
        }
    }
}
