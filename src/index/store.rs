//! The index on disk: opened (or rebuilt when its schema version changed), and brought
//! up to date with the stages.
//!
//! `catch_up` compares each artifact's size and mtime with what the index holds and
//! re-reads only what changed; paths gone from disk are deleted. Authorship comes from
//! the journal: the version it knows by hash, else `external`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use anyhow::{Context as _, Result};
use tantivy::schema::Value;
use tantivy::{DateTime, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::extract;
use super::schema::{IndexSchema, SCHEMA_VERSION};
use crate::journal::State;
use crate::workspace::{RelPath, Workspace};

/// Files above this are indexed by path and metadata only (DESIGN §8).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;
const WRITER_BUDGET: usize = 50_000_000;
const VERSION_FILE: &str = "schema-version";

pub struct Store {
    pub index: Index,
    pub schema: IndexSchema,
}

/// What the index holds for one path.
struct Indexed {
    size: u64,
    mtime_ns: u64,
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
        let dir = index_dir(ws);
        let schema = IndexSchema::new();
        let version = std::fs::read_to_string(dir.join(VERSION_FILE)).ok();
        if version.as_deref().map(str::trim) != Some(&SCHEMA_VERSION.to_string()) && dir.exists() {
            tracing::info!("the search index has another schema version; rebuilding it");
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mmap = tantivy::directory::MmapDirectory::open(&dir)
            .with_context(|| format!("opening the index in {}", dir.display()))?;
        let index = match Index::open_or_create(mmap, schema.schema.clone()) {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!("the search index is unreadable ({e}); rebuilding it");
                std::fs::remove_dir_all(&dir)?;
                std::fs::create_dir_all(&dir)?;
                Index::create_in_dir(&dir, schema.schema.clone())?
            }
        };
        std::fs::write(dir.join(VERSION_FILE), format!("{SCHEMA_VERSION}\n"))?;
        IndexSchema::register_tokenizers(&index);
        Ok(Store { index, schema })
    }

    pub fn writer(&self) -> Result<IndexWriter> {
        self.index.writer(WRITER_BUDGET).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => {
                anyhow::anyhow!(
                    "another baton process is writing the search index; try again in a moment"
                )
            }
            other => other.into(),
        })
    }

    pub fn reader(&self) -> Result<IndexReader> {
        Ok(self
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?)
    }

    /// Brings the index in line with the stages; commits if anything changed.
    pub fn catch_up(
        &self,
        ws: &Workspace,
        stages: &[String],
        state: &State,
        max_size: u64,
    ) -> Result<CatchUp> {
        let indexed = self.indexed()?;
        let mut writer: Option<IndexWriter> = None;
        let mut report = CatchUp::default();
        let mut seen = std::collections::HashSet::new();
        for stage in stages {
            for entry in walkdir::WalkDir::new(ws.root.join(stage))
                .follow_links(false)
                .into_iter()
                .filter_entry(|e| {
                    e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')
                })
                .flatten()
            {
                if !entry.file_type().is_file() {
                    continue;
                }
                let Ok(rel) = entry
                    .path()
                    .strip_prefix(&ws.root)
                    .map_err(anyhow::Error::from)
                    .and_then(RelPath::from_path)
                else {
                    continue;
                };
                if rel.is_ignored() {
                    continue;
                }
                report.checked += 1;
                let Ok(meta) = entry.metadata() else { continue };
                let mtime_ns = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as u64);
                seen.insert(rel.as_str().to_string());
                if indexed
                    .get(rel.as_str())
                    .is_some_and(|i| i.size == meta.len() && i.mtime_ns == mtime_ns)
                {
                    continue;
                }
                let w = match writer.as_mut() {
                    Some(w) => w,
                    None => writer.insert(self.writer()?),
                };
                self.upsert(w, ws, &rel, state, max_size)?;
                report.updated += 1;
            }
        }
        for path in indexed.keys().filter(|p| !seen.contains(*p)) {
            let w = match writer.as_mut() {
                Some(w) => w,
                None => writer.insert(self.writer()?),
            };
            w.delete_term(Term::from_field_text(self.schema.fields.path, path));
            report.removed += 1;
        }
        if let Some(mut w) = writer {
            w.commit().context("committing the search index")?;
        }
        Ok(report)
    }

    /// Replaces the document of `path` with the file's current content.
    pub fn upsert(
        &self,
        writer: &mut IndexWriter,
        ws: &Workspace,
        path: &RelPath,
        state: &State,
        max_size: u64,
    ) -> Result<()> {
        let f = &self.schema.fields;
        writer.delete_term(Term::from_field_text(f.path, path.as_str()));
        let abs = ws.abs(path);
        let meta = match std::fs::metadata(&abs) {
            Ok(m) => m,
            Err(_) => return Ok(()), // gone meanwhile: deleted is right
        };
        let too_big = meta.len() > max_size;
        let bytes = if too_big {
            Vec::new()
        } else {
            std::fs::read(&abs).unwrap_or_default()
        };
        let hash = if too_big {
            crate::publish::hash_file(&abs)
                .map(|(h, _)| h)
                .unwrap_or_default()
        } else {
            blake3::hash(&bytes).to_hex().to_string()
        };
        let extracted = extract::extract(path, &bytes, too_big);
        let (author, task) = match state.artifacts.get(path) {
            Some(a) if a.hash == hash => (a.by.clone(), a.task.clone().unwrap_or_default()),
            _ => ("external".to_string(), String::new()),
        };
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let mut doc = TantivyDocument::new();
        doc.add_text(f.path, path.as_str());
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
        writer.add_document(doc)?;
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
                let path = doc
                    .get_first(f.path)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                let size = doc.get_first(f.size).and_then(|v| v.as_u64()).unwrap_or(0);
                let mtime_ns = doc
                    .get_first(f.mtime_ns)
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
                out.insert(path, Indexed { size, mtime_ns });
            }
        }
        Ok(out)
    }
}

pub fn index_dir(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("index")
}
