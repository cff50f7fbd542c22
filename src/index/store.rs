//! The index on disk: opened (or rebuilt when its schema version changed), and brought
//! up to date with the stages.
//!
//! `catch_up` compares each artifact's size and mtime with what the index holds and
//! re-reads only what changed; paths gone from disk are deleted. Authorship comes from
//! the journal: the version it knows by hash, else `external`.

use std::collections::HashMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::Duration;
use std::time::UNIX_EPOCH;

use anyhow::{Context as _, Result};
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DateTime, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::budget::{Doc, IN_FLIGHT_BYTES, InFlight};
use super::extract;
use super::folders::FolderMap;
use super::schema::{IndexSchema, SCHEMA_VERSION};
use crate::journal::State;
use crate::progress::Progress;
use crate::workspace::{RelPath, Workspace, walk_visible};

/// The index writer baton uses: its documents carry a permit for their bytes.
pub type Writer = IndexWriter<Doc>;

/// Who wrote a version: (path, content hash) → (author, task). From the journal.
pub type Authorship<'a> = &'a dyn Fn(&RelPath, &str) -> (String, String);

/// Authorship from a replayed journal: the version it knows by hash, else `external`.
pub fn from_state(state: &State) -> impl Fn(&RelPath, &str) -> (String, String) + '_ {
    move |path, hash| author_of(state, path, hash)
}

/// Authorship from the journal, read only when asked: a search whose catch-up finds
/// nothing to index (the usual case) never reads it. Read and replayed up front, a
/// journal of 100,000 artifacts (20 MB) took 300 ms of what is otherwise a 5 ms search.
/// The first few lookups search the journal's bytes for the path's last `artifact` line;
/// after that, it is replayed once.
pub struct LazyAuthors<'a> {
    ws: &'a Workspace,
    bytes: std::cell::OnceCell<Vec<u8>>,
    state: std::cell::OnceCell<State>,
    lookups: std::cell::Cell<usize>,
}

/// Lookups answered by searching the journal's bytes before it is replayed instead.
const TARGETED_LOOKUPS: usize = 16;

impl<'a> LazyAuthors<'a> {
    pub fn new(ws: &'a Workspace) -> LazyAuthors<'a> {
        LazyAuthors {
            ws,
            bytes: std::cell::OnceCell::new(),
            state: std::cell::OnceCell::new(),
            lookups: std::cell::Cell::new(0),
        }
    }

    pub fn author(&self, path: &RelPath, hash: &str) -> (String, String) {
        self.lookups.set(self.lookups.get() + 1);
        if self.state.get().is_none() && self.lookups.get() <= TARGETED_LOOKUPS {
            return match last_artifact(self.bytes(), path) {
                Some((by, task, known)) if known == hash => (by, task),
                _ => ("external".to_string(), String::new()),
            };
        }
        let state = self.state.get_or_init(|| {
            let path = crate::journal::journal_path(self.ws);
            State::replay(&crate::journal::parse_all(self.bytes(), &path))
        });
        author_of(state, path, hash)
    }

    /// The journal's bytes, read once (none if there is no journal or it is unreadable).
    fn bytes(&self) -> &[u8] {
        self.bytes.get_or_init(|| {
            let path = crate::journal::journal_path(self.ws);
            match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(
                            "reading the journal {}: {e}; files indexed now are attributed to `external`",
                            path.display()
                        );
                    }
                    Vec::new()
                }
            }
        })
    }
}

/// The author, task and hash of the last `artifact` record for `path` in the journal's
/// `bytes`, as a replay would leave them.
fn last_artifact(bytes: &[u8], path: &RelPath) -> Option<(String, String, String)> {
    let Ok(quoted) = serde_json::to_string(path.as_str()) else {
        return None;
    };
    let needle = format!("\"path\":{quoted}");
    for at in memchr::memmem::rfind_iter(bytes, needle.as_bytes()) {
        let start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let Some(len) = bytes[at..].iter().position(|&b| b == b'\n') else {
            continue; // a torn last line, which readers ignore
        };
        let Ok(entry) = serde_json::from_slice::<crate::journal::Entry>(&bytes[start..at + len])
        else {
            continue;
        };
        if let crate::journal::Record::Artifact {
            path: p,
            hash,
            by,
            task,
            ..
        } = entry.record
        {
            if p == *path {
                return Some((by, task.unwrap_or_default(), hash));
            }
        }
    }
    None
}

/// The author and task of the version of `path` with content `hash`.
pub fn author_of(state: &State, path: &RelPath, hash: &str) -> (String, String) {
    match state.artifacts.get(path) {
        Some(a) if a.hash == hash => (a.by.clone(), a.task.clone().unwrap_or_default()),
        _ => ("external".to_string(), String::new()),
    }
}

/// Files above this are indexed by path and metadata only (DESIGN §8).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;
/// The indexing memory budget, shared by tantivy's threads: at least this much…
const WRITER_BUDGET: usize = 50_000_000;
/// …and up to this much for a large batch. A bigger budget makes fewer, larger
/// segments and so fewer merges: a 366 MB rebuild took 7.7-8.3 s with 300 MB against
/// 9.5-10.6 s with 50 MB (and left 2 segments, not 8).
const MAX_WRITER_BUDGET: usize = 300_000_000;
const VERSION_FILE: &str = "schema-version";

pub struct Store {
    pub index: Index,
    pub schema: IndexSchema,
    /// Bytes of documents queued for this store's writers.
    in_flight: std::sync::Arc<InFlight>,
}

/// What the index holds for one path.
pub(super) struct Indexed {
    pub size: u64,
    pub mtime_ns: u64,
    pub hash: String,
}

impl Indexed {
    /// The path of a stored document and what is known of its file.
    pub fn from_doc(f: &super::schema::Fields, doc: &TantivyDocument) -> (String, Indexed) {
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let number = |field| doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0);
        (
            text(f.path),
            Indexed {
                size: number(f.size),
                mtime_ns: number(f.mtime_ns),
                hash: text(f.hash),
            },
        )
    }
}

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
pub enum Check {
    /// Size and mtime: cheap, misses an edit that keeps both.
    SizeAndTime,
    /// Size, mtime and the content hash (`baton index`).
    Content,
}

/// What a catch-up did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    pub checked: usize,
    pub updated: usize,
    pub removed: usize,
}

impl Store {
    /// Opens `.baton/index/`, creating it, or rebuilding it from scratch when it was
    /// written with another schema version.
    pub fn open(ws: &Workspace) -> Result<Store> {
        Store::open_with(ws, None)
    }

    /// Like [`Store::open`], for answering a query: the index files are mapped for
    /// random access. A query touches a few pages of them; with the default advice a
    /// cold page fault reads ahead up to `read_ahead_kb` (8 MB on the test machine), and
    /// a cold search read 70 MB of a 100 MB index.
    pub fn open_for_search(ws: &Workspace) -> Result<Store> {
        Store::open_with(ws, Some(tantivy::directory::Advice::Random))
    }

    fn open_with(ws: &Workspace, advice: Option<tantivy::directory::Advice>) -> Result<Store> {
        let dir = index_dir(ws);
        let schema = IndexSchema::new();
        let version = std::fs::read_to_string(dir.join(VERSION_FILE)).ok();
        let current = version.as_deref().map(str::trim) == Some(&SCHEMA_VERSION.to_string());
        if !current && dir.exists() {
            tracing::info!("the search index has another schema version; rebuilding it");
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mmap = match advice {
            Some(advice) => tantivy::directory::MmapDirectory::open_with_madvice(&dir, advice),
            None => tantivy::directory::MmapDirectory::open(&dir),
        }
        .with_context(|| format!("opening the index in {}", dir.display()))?;
        let (index, created) = match Index::open_or_create(mmap, schema.schema.clone()) {
            Ok(index) => (index, !current),
            Err(e) => {
                tracing::warn!("the search index is unreadable ({e}); rebuilding it");
                std::fs::remove_dir_all(&dir)?;
                std::fs::create_dir_all(&dir)?;
                (Index::create_in_dir(&dir, schema.schema.clone())?, true)
            }
        };
        if created {
            // Only a new index gets its version written: searches stay read-only.
            std::fs::write(dir.join(VERSION_FILE), format!("{SCHEMA_VERSION}\n"))?;
        }
        IndexSchema::register_tokenizers(&index);
        Ok(Store {
            index,
            schema,
            in_flight: InFlight::new(IN_FLIGHT_BYTES),
        })
    }

    pub fn writer(&self) -> Result<Writer> {
        self.writer_for(0)
    }

    /// A writer whose budget suits indexing `bytes` of files.
    fn writer_for(&self, bytes: u64) -> Result<Writer> {
        let budget = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .clamp(WRITER_BUDGET, MAX_WRITER_BUDGET);
        self.index.writer::<Doc>(budget).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => {
                anyhow::anyhow!(
                    "another baton process is writing the search index; try again in a moment"
                )
            }
            other => other.into(),
        })
    }

    /// The daemon's writer: one indexing thread and tantivy's minimum budget. It sees a
    /// trickle of changes, and must leave the CPU and memory to the agents (the
    /// default writer took the daemon from 11 to 40 MB RSS during a burst).
    pub fn daemon_writer(&self) -> Result<Writer> {
        Ok(self.index.writer_with_num_threads::<Doc>(1, 15_000_000)?)
    }

    pub fn reader(&self) -> Result<IndexReader> {
        Ok(self
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?)
    }

    /// Brings the index in line with the stages, taking the writer only if something
    /// changed; commits. `check` says how closely; a progress bar appears on a terminal
    /// once the work has taken longer than `progress_after`.
    pub fn catch_up(
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
    pub fn catch_up_with(
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
        // Files go over in batches: one at a time, the walker and the reader woke each
        // other for every file (five futex calls a file, against one for tantivy's own
        // queue).
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

    /// Deletes the document of `path` and, if `path` was a folder, of everything in it.
    pub fn remove(&self, writer: &mut Writer, path: &RelPath) -> Result<()> {
        let field = self.schema.fields.path;
        writer.delete_term(Term::from_field_text(field, path.as_str()));
        let below = format!("{}/.*", regex_escape(path.as_str()));
        writer.delete_query(Box::new(tantivy::query::RegexQuery::from_pattern(
            &below, field,
        )?))?;
        Ok(())
    }

    /// [`Store::upsert`] unless the index already holds `path` at its current size and
    /// mtime (as `searcher` sees it).
    pub fn upsert_if_changed(
        &self,
        writer: &mut Writer,
        searcher: &tantivy::Searcher,
        ws: &Workspace,
        path: &RelPath,
        who: Authorship,
        max_size: u64,
    ) -> Result<bool> {
        let Ok(meta) = std::fs::metadata(ws.abs(path)) else {
            self.remove(writer, path)?;
            return Ok(true);
        };
        let f = &self.schema.fields;
        let term = TermQuery::new(
            Term::from_field_text(f.path, path.as_str()),
            IndexRecordOption::Basic,
        );
        let top = searcher.search(&term, &TopDocs::with_limit(1).order_by_score())?;
        if let Some((_, address)) = top.first() {
            let (_, known) = Indexed::from_doc(f, &searcher.doc(*address)?);
            if known.size == meta.len() && known.mtime_ns == mtime_ns(&meta) {
                return Ok(false);
            }
        }
        self.upsert(writer, ws, path, None, who, max_size)?;
        Ok(true)
    }

    /// Replaces the document of `path` with the file's current content (`meta`: its
    /// metadata, if the caller just looked it up).
    pub fn upsert(
        &self,
        writer: &mut Writer,
        ws: &Workspace,
        path: &RelPath,
        meta: Option<&Metadata>,
        who: Authorship,
        max_size: u64,
    ) -> Result<()> {
        writer.delete_term(Term::from_field_text(
            self.schema.fields.path,
            path.as_str(),
        ));
        self.add(writer, ws, path, meta, who, max_size)
    }

    /// Adds the document of a path the index does not hold (no delete to resolve).
    /// `meta` is the file's metadata if the caller just looked it up. (If the file
    /// changes after that, the index records the older mtime, so the next catch-up
    /// sees a difference and reads the file again: a change is never missed.)
    fn add(
        &self,
        writer: &mut Writer,
        ws: &Workspace,
        path: &RelPath,
        meta: Option<&Metadata>,
        who: Authorship,
        max_size: u64,
    ) -> Result<()> {
        let f = &self.schema.fields;
        let abs = ws.abs(path);
        let looked_up;
        let meta = match meta {
            Some(meta) => meta,
            None => match std::fs::metadata(&abs) {
                Ok(m) => {
                    looked_up = m;
                    &looked_up
                }
                Err(_) => return Ok(()), // gone meanwhile: deleted is right
            },
        };
        let too_big = meta.len() > max_size;
        let bytes = if too_big {
            Vec::new()
        } else {
            read_sized(&abs, meta.len()).unwrap_or_default()
        };
        let hash = if too_big {
            crate::publish::hash_file(&abs)
                .map(|(h, _)| h)
                .unwrap_or_default()
        } else {
            blake3::hash(&bytes).to_hex().to_string()
        };
        let extracted = extract::extract(path, &bytes, too_big);
        let (author, task) = who(path, &hash);
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let mut doc = TantivyDocument::new();
        doc.add_text(f.path, path.as_str());
        doc.add_text(f.folder, parent_of(path.as_str()));
        doc.add_text(f.stage, path.first());
        doc.add_text(f.author, &author);
        doc.add_text(f.task, &task);
        doc.add_text(f.title, &extracted.title);
        if let Some(body) = &extracted.body {
            doc.add_text(f.body, body);
        }
        if !extracted.meta.is_empty() {
            if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&extracted.meta) {
                doc.add_object(
                    f.meta,
                    map.into_iter().map(|(k, v)| (k, v.into())).collect(),
                );
            }
        }
        doc.add_date(
            f.modified,
            DateTime::from_timestamp_secs(modified.as_secs() as i64),
        );
        doc.add_u64(f.size, meta.len());
        doc.add_text(f.hash, &hash);
        doc.add_u64(f.mtime_ns, modified.as_nanos() as u64);
        // Waits while too many bytes are queued for the indexing threads.
        let permit = self.in_flight.acquire(bytes.len() as u64);
        writer.add_document(Doc::new(doc, permit))?;
        Ok(())
    }

    /// Every indexed path with its size and mtime.
    fn indexed(&self) -> Result<HashMap<String, Indexed>> {
        let reader = self.reader()?;
        let searcher = reader.searcher();
        let f = &self.schema.fields;
        let mut out = HashMap::new();
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(64)?;
            for doc_id in segment.doc_ids_alive() {
                let doc: TantivyDocument = store.get(doc_id)?;
                let (path, known) = Indexed::from_doc(f, &doc);
                out.insert(path, known);
            }
        }
        Ok(out)
    }
}

/// The folder part of a workspace-relative path (`drafts/sub/a.md` → `drafts/sub`).
pub fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

pub fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `s` as a regex matching itself.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~\"<>@".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn index_dir(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("index")
}

/// Reads a file whose size the caller has from its walk. `std::fs::read` would `fstat`
/// it once more for the same figure: a tenth of a rebuild's system calls.
fn read_sized(path: &Path, size: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    // Through `Take`, which has no size hint to ask the file for; a file that grew
    // since the walk is still read whole.
    (&file).take(u64::MAX).read_to_end(&mut bytes)?;
    Ok(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Appender, Record};

    fn artifact(path: &str, hash: &str, by: &str, task: Option<&str>) -> Record {
        Record::Artifact {
            path: RelPath::new(path).unwrap(),
            hash: hash.into(),
            size: 1,
            by: by.into(),
            task: task.map(str::to_string),
        }
    }

    #[test]
    fn lazy_authors_answer_as_a_replay_would_before_and_after_replaying() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        let odd = "drafts/\"quoted\" é.md";
        let records = vec![
            artifact("drafts/a.md", "h1", "writer", Some("t-1")),
            artifact("drafts/b.md", "hb", "human", None),
            artifact(odd, "ho", "editor", Some("t-2")),
            artifact("drafts/a.md", "h2", "reviewer", Some("t-3")),
            // Later, and naming the path, but not an artifact record.
            Record::Rejected {
                path: RelPath::new("drafts/a.md").unwrap(),
                hash: Some("h3".into()),
                error: "bad".into(),
            },
            artifact("drafts/ab.md", "hab", "other", None),
        ];
        Appender::open(&ws).unwrap().append(records, false).unwrap();
        let state = State::replay(&crate::journal::read_all(&ws).unwrap());
        let asks = [
            ("drafts/a.md", "h2"),
            ("drafts/a.md", "h1"), // an older version's content: not the journal's now
            ("drafts/b.md", "hb"),
            (odd, "ho"),
            ("drafts/ab.md", "hab"),
            ("drafts/none.md", "hx"),
        ];
        let lazy = LazyAuthors::new(&ws);
        // Past TARGETED_LOOKUPS the journal is replayed: both ways must agree.
        for round in 0..4 {
            for (path, hash) in asks {
                let path = RelPath::new(path).unwrap();
                assert_eq!(
                    lazy.author(&path, hash),
                    author_of(&state, &path, hash),
                    "{path} {hash}, round {round}"
                );
            }
        }
        assert!(lazy.state.get().is_some());
        assert_eq!(
            lazy.author(&RelPath::new("drafts/a.md").unwrap(), "h2"),
            ("reviewer".to_string(), "t-3".to_string())
        );
    }
}
