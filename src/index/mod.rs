//! The search index (DESIGN §8): a tantivy index in `.baton/index/`.
//!
//! - [`schema`]: typed fields and the schema version.
//! - [`stem`]: the English analyzer, one pass, stems remembered per word.
//! - [`extract`]: what of a file goes into the index (pure).
//! - [`folders`]: the cheap catch-up by folder mtimes.
//! - [`fanout`]: many small reads, spread over threads when they hit the disk.
//! - [`budget`]: a bound on the bytes of documents queued for tantivy.
//! - [`store`]: opening (or rebuilding) the index and catching it up with the stages.
//! - [`search`]: answering a query, with snippets.
//! - [`writer`]: the daemon's one index writer, on its own thread.

pub mod budget;
pub mod extract;
pub mod fanout;
pub mod folders;
pub mod schema;
pub mod search;
pub mod stem;
pub mod store;
pub mod writer;
