//! The index on disk: opened (or rebuilt when its schema version changed), its writers
//! and reader, and the documents of single files (add, upsert, remove). Bringing the
//! whole index up to date with the stages is [`super::catch_up`].

use std::collections::HashMap;
use std::fs::Metadata;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use anyhow::{Context as _, Result};
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DateTime, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::budget::{Doc, IN_FLIGHT_BYTES, InFlight};
use super::extract;
use super::schema::{IndexSchema, SCHEMA_VERSION};
use crate::journal::Attribution;
use crate::workspace::{RelPath, Workspace};

/// The index writer baton uses: its documents carry a permit for their bytes.
pub(crate) type Writer = IndexWriter<Doc>;

/// A file as just read: its metadata, all its bytes, and their hash.
pub(crate) struct FileRead {
    pub(crate) meta: Metadata,
    pub(crate) bytes: Vec<u8>,
    pub(crate) hash: String,
}

/// Who wrote a version: (path, content hash) → attribution. From the journal.
pub(crate) type Authorship<'a> = &'a dyn Fn(&RelPath, &str) -> Attribution;

/// The indexing memory budget, shared by tantivy's threads: at least this much…
const WRITER_BUDGET: usize = 50_000_000;
/// …and up to this much for a large batch. A bigger budget makes fewer, larger
/// segments and so fewer merges (bench/search.sh, the rebuild).
const MAX_WRITER_BUDGET: usize = 300_000_000;
const VERSION_FILE: &str = "schema-version";

pub(crate) struct Store {
    pub(crate) index: Index,
    pub(crate) schema: IndexSchema,
    /// Bytes of documents queued for this store's writers.
    in_flight: std::sync::Arc<InFlight>,
}

/// What the index holds for one path.
pub(super) struct Indexed {
    pub(super) size: u64,
    pub(super) mtime_ns: u64,
    pub(super) hash: String,
}

impl Indexed {
    /// The path of a stored document and what is known of its file.
    pub(crate) fn from_doc(f: &super::schema::Fields, doc: &TantivyDocument) -> (String, Indexed) {
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

impl Store {
    /// Opens `.baton/index/`, creating it, or rebuilding it from scratch when it was
    /// written with another schema version.
    pub(crate) fn open(ws: &Workspace) -> Result<Store> {
        Store::open_with(ws, None)
    }

    /// Like [`Store::open`], for answering a query: the index files are mapped for
    /// random access. A query touches a few pages of them; with the default advice a
    /// cold page fault reads ahead up to `read_ahead_kb`, so a cold search would read
    /// most of the index.
    pub(crate) fn open_for_search(ws: &Workspace) -> Result<Store> {
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

    pub(crate) fn writer(&self) -> Result<Writer> {
        self.writer_for(0)
    }

    /// A writer whose budget suits indexing `bytes` of files.
    pub(super) fn writer_for(&self, bytes: u64) -> Result<Writer> {
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
    /// default writer's threads and budget would take several times the daemon's RSS).
    pub(crate) fn daemon_writer(&self) -> Result<Writer> {
        Ok(self.index.writer_with_num_threads::<Doc>(1, 15_000_000)?)
    }

    pub(crate) fn reader(&self) -> Result<IndexReader> {
        Ok(self
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?)
    }

    /// Deletes the document of `path` and, if `path` was a folder, of everything in it.
    pub(crate) fn remove(&self, writer: &mut Writer, path: &RelPath) -> Result<()> {
        let field = self.schema.fields.path;
        writer.delete_term(Term::from_field_text(field, path.as_str()));
        let below = format!("{}/.*", regex_escape(path.as_str()));
        writer.delete_query(Box::new(tantivy::query::RegexQuery::from_pattern(
            &below, field,
        )?))?;
        Ok(())
    }

    /// [`Store::upsert`] unless the index already holds `path` at its current size and
    /// mtime (as `searcher` sees it). `read` is the file as the caller just read it, if
    /// it did: then it is not read again.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn upsert_if_changed(
        &self,
        writer: &mut Writer,
        searcher: &tantivy::Searcher,
        ws: &Workspace,
        path: &RelPath,
        read: Option<Box<FileRead>>,
        who: Authorship,
        max_size: u64,
    ) -> Result<bool> {
        let meta = match &read {
            Some(read) => read.meta.clone(),
            None => match std::fs::metadata(ws.abs(path)) {
                Ok(meta) => meta,
                Err(_) => {
                    self.remove(writer, path)?;
                    return Ok(true);
                }
            },
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
        match read {
            Some(read) if read.meta.len() <= max_size => {
                writer.delete_term(Term::from_field_text(f.path, path.as_str()));
                self.add_read(writer, path, &read.meta, &read.bytes, read.hash, false, who)?;
            }
            _ => self.upsert(writer, ws, path, Some(&meta), who, max_size)?,
        }
        Ok(true)
    }

    /// Replaces the document of `path` with the file's current content (`meta`: its
    /// metadata, if the caller just looked it up).
    pub(crate) fn upsert(
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
    pub(super) fn add(
        &self,
        writer: &mut Writer,
        ws: &Workspace,
        path: &RelPath,
        meta: Option<&Metadata>,
        who: Authorship,
        max_size: u64,
    ) -> Result<()> {
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
            // Not through a symlink, not blocking on a FIFO swapped in since the walk, and
            // no further than its size on opening.
            crate::beneath::open_path(&abs, false)
                .and_then(|opened| opened.bytes())
                .unwrap_or_default()
        };
        let hash = if too_big {
            crate::publish::hash_file(&abs)
                .map(|(h, _)| h)
                .unwrap_or_default()
        } else {
            blake3::hash(&bytes).to_hex().to_string()
        };
        self.add_read(writer, path, meta, &bytes, hash, too_big, who)
    }

    /// Adds the document of `path` from what was read of it: `bytes` (empty when
    /// `too_big`: indexed by path and metadata only), their `hash` and the file's `meta`.
    #[allow(clippy::too_many_arguments)]
    fn add_read(
        &self,
        writer: &mut Writer,
        path: &RelPath,
        meta: &Metadata,
        bytes: &[u8],
        hash: String,
        too_big: bool,
        who: Authorship,
    ) -> Result<()> {
        let f = &self.schema.fields;
        let extracted = extract::extract(path, bytes, too_big);
        let who = who(path, &hash);
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let mut doc = TantivyDocument::new();
        doc.add_text(f.path, path.as_str());
        doc.add_text(f.folder, path.parent());
        doc.add_text(f.stage, path.first());
        doc.add_text(f.author, who.by.as_str());
        doc.add_text(f.task, who.task_str());
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
    pub(super) fn indexed(&self) -> Result<HashMap<String, Indexed>> {
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

pub(crate) fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
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

pub(crate) fn index_dir(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("index")
}
