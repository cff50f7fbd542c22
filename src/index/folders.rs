//! The cheap catch-up (DESIGN §8): a folder's mtime changes whenever an entry is added,
//! removed or renamed in it, which is how atomic saves and `baton drop` publish. So a
//! search without a daemon stats the folders only, and lists just the ones that changed.
//! Files edited in place keep their folder's mtime: `baton index` checks every file.
//!
//! The folder mtimes as of the last catch-up live in `.baton/index/folders.json`. Each is
//! taken *before* its folder is listed, so a change during the listing shows next time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use tantivy::collector::DocSetCollector;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{TantivyDocument, Term};

use super::store::{Authorship, CatchUp, Indexed, Store, index_dir, mtime_ns};
use crate::workspace::{RelPath, Workspace, walk_visible};

const FILE: &str = "folders.json";

/// Timestamps are coarse (a clock tick): a folder changed in the same tick right after
/// it was stat'ed keeps its mtime. So an mtime younger than this is not trusted; the
/// folder is recorded as unknown and listed again next time (git's "racily clean").
const RACY_NS: u64 = 2_000_000_000;

/// The mtime to record for a folder: 0 (unknown) while it is too recent to trust.
fn trusted(mtime: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    if now.saturating_sub(mtime) < RACY_NS {
        0
    } else {
        mtime
    }
}

/// Folder (workspace-relative) → its mtime in nanoseconds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FolderMap {
    folders: BTreeMap<String, u64>,
}

impl FolderMap {
    pub fn load(ws: &Workspace) -> Option<FolderMap> {
        let text = std::fs::read_to_string(index_dir(ws).join(FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the map atomically (write, then rename over).
    pub fn save(&self, ws: &Workspace) -> Result<()> {
        let path = index_dir(ws).join(FILE);
        let tmp = index_dir(ws).join(format!(".{FILE}.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Records `dir` and every folder below it.
    fn add_tree(&mut self, ws: &Workspace, dir: &str) {
        let walk = walk_visible(&ws.root.join(dir));
        for entry in walk.flatten().filter(|e| e.file_type().is_dir()) {
            if let Ok(rel) = entry.path().strip_prefix(&ws.root) {
                self.record(rel, &entry);
            }
        }
    }

    /// Records folder `entry` (at `rel` in the workspace) with its mtime as of now: call
    /// it before the folder is listed.
    pub fn record(&mut self, rel: &Path, entry: &walkdir::DirEntry) {
        if let (Some(rel), Ok(meta)) = (rel.to_str(), entry.metadata()) {
            self.folders
                .insert(rel.to_string(), trusted(mtime_ns(&meta)));
        }
    }

    fn forget_tree(&mut self, dir: &str) {
        let below = format!("{dir}/");
        self.folders
            .retain(|k, _| k != dir && !k.starts_with(&below));
    }
}

impl Store {
    /// The cheap catch-up; `None` when there is no folder map yet (then do a full one).
    /// Commits, and saves the new folder map, if anything changed.
    pub fn catch_up_folders(
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
    writer: Option<super::store::Writer>,
}

impl LazyWriter<'_> {
    fn get(&mut self) -> Result<&mut super::store::Writer> {
        match &mut self.writer {
            Some(writer) => Ok(writer),
            none => Ok(none.insert(self.store.writer()?)),
        }
    }
}

fn rel_of(ws: &Workspace, path: &Path) -> Option<RelPath> {
    RelPath::from_path(path.strip_prefix(&ws.root).ok()?).ok()
}
