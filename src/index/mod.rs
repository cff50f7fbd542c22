//! The search index (DESIGN §8): a tantivy index in `.baton/index/`.
//!
//! - [`schema`]: typed fields and the schema version.
//! - [`stem`]: the English analyzer, one pass, stems remembered per word.
//! - [`extract`]: what of a file goes into the index (pure).
//! - [`store`]: opening (or rebuilding) the index; the documents of single files.
//! - [`catch_up`]: bringing the index in line with the stages, fully or by folder mtimes.
//! - [`folders`]: the folder map the cheap catch-up compares against.
//! - [`fanout`]: many small reads, spread over threads when they hit the disk.
//! - [`budget`]: a bound on the bytes of documents queued for tantivy.
//! - [`search`]: answering a query, with snippets.
//! - [`writer`]: the daemon's one index writer, on its own thread.

mod budget;
pub(crate) mod catch_up;
mod extract;
mod fanout;
mod folders;
mod schema;
pub(crate) mod search;
mod stem;
pub(crate) mod store;
pub(crate) mod writer;
