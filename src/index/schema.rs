//! The search index's schema: typed fields and a version. A version change means the
//! index on disk is rebuilt, never that opening it fails (DESIGN §8).

use tantivy::Index;
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, INDEXED, IndexRecordOption, JsonObjectOptions,
    STORED, Schema, SchemaBuilder, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};

use super::stem::EnglishWords;

/// Bump on any change below; an index with another version is rebuilt.
pub(crate) const SCHEMA_VERSION: u32 = 3;

/// Words: split on non-alphanumerics, lowercased, English-stemmed.
pub(crate) const TEXT_TOKENIZER: &str = "baton_en";
/// Exact values compared case-insensitively (`author:Writer` = `author:writer`).
pub(crate) const EXACT_TOKENIZER: &str = "baton_exact";

/// The fields, by name, typed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// Workspace-relative path, exact and case-sensitive: the key for upserts.
    pub(crate) path: Field,
    /// The folder holding the file, exact: what a cheap catch-up lists per folder.
    pub(crate) folder: Field,
    pub(crate) stage: Field,
    /// The agent, `human` or `external`, from the journal.
    pub(crate) author: Field,
    pub(crate) task: Field,
    pub(crate) title: Field,
    /// Not stored: snippets are cut from the file on disk, keeping the index small.
    pub(crate) body: Field,
    /// Front matter keys other than title, as JSON (`meta.verdict:approve`).
    pub(crate) meta: Field,
    pub(crate) modified: Field,
    pub(crate) size: Field,
    /// blake3 of the content, and mtime in nanoseconds: what a catch-up compares
    /// (stored, not searchable).
    pub(crate) hash: Field,
    pub(crate) mtime_ns: Field,
}

#[derive(Debug, Clone)]
pub(crate) struct IndexSchema {
    pub(crate) schema: Schema,
    pub(crate) fields: Fields,
}

impl IndexSchema {
    pub(crate) fn new() -> IndexSchema {
        let mut b = SchemaBuilder::new();
        let text = |stored: bool| {
            let indexing = TextFieldIndexing::default()
                .set_tokenizer(TEXT_TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions);
            let opts = TextOptions::default().set_indexing_options(indexing);
            if stored { opts.set_stored() } else { opts }
        };
        let exact = |tokenizer: &str| {
            let indexing = TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::Basic);
            TextOptions::default()
                .set_indexing_options(indexing)
                .set_stored()
        };
        let fields = Fields {
            path: b.add_text_field("path", exact("raw")),
            folder: b.add_text_field("folder", exact("raw")),
            stage: b.add_text_field("stage", exact(EXACT_TOKENIZER)),
            author: b.add_text_field("author", exact(EXACT_TOKENIZER)),
            task: b.add_text_field("task", exact(EXACT_TOKENIZER)),
            title: b.add_text_field("title", text(true)),
            body: b.add_text_field("body", text(false)),
            meta: b.add_json_field(
                "meta",
                JsonObjectOptions::default().set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer(TEXT_TOKENIZER)
                        .set_index_option(IndexRecordOption::WithFreqsAndPositions),
                ),
            ),
            modified: b.add_date_field(
                "modified",
                DateOptions::from(INDEXED | STORED | FAST)
                    .set_precision(DateTimePrecision::Seconds),
            ),
            size: b.add_u64_field("size", INDEXED | STORED | FAST),
            // Stored only: read by a catch-up, never searched. Indexed, its 64-hex-digit
            // terms, one per file, made each segment's term dictionary far larger.
            hash: b.add_text_field("hash", STORED),
            mtime_ns: b.add_u64_field("mtime_ns", STORED),
        };
        IndexSchema {
            schema: b.build(),
            fields,
        }
    }

    /// Registers the analyzers the fields name; needed on every opened index.
    pub(crate) fn register_tokenizers(index: &Index) {
        let words = TextAnalyzer::from(EnglishWords::default());
        index.tokenizers().register(TEXT_TOKENIZER, words);
        let exact = TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .build();
        index.tokenizers().register(EXACT_TOKENIZER, exact);
    }
}

impl Default for IndexSchema {
    fn default() -> Self {
        IndexSchema::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(index: &Index, analyzer: &str, text: &str) -> Vec<String> {
        let mut a = index.tokenizers().get(analyzer).unwrap();
        let mut stream = a.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        out
    }

    #[test]
    fn words_are_lowercased_and_stemmed_exact_values_only_lowercased() {
        let s = IndexSchema::new();
        let index = Index::create_in_ram(s.schema.clone());
        IndexSchema::register_tokenizers(&index);
        assert_eq!(
            tokens(&index, TEXT_TOKENIZER, "Running Launches"),
            ["run", "launch"]
        );
        assert_eq!(
            tokens(&index, EXACT_TOKENIZER, "Writer-Bot"),
            ["writer-bot"]
        );
    }
}
