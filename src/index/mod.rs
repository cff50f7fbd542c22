//! The search index (DESIGN §8): a tantivy index in `.baton/index/`.
//!
//! - [`schema`]: typed fields and the schema version.
//! - [`extract`]: what of a file goes into the index (pure).

pub mod extract;
pub mod schema;
