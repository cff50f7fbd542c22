//! The manifest: an append-only JSON Lines journal of everything that happened
//! (DESIGN §5).
//!
//! - [`record`]: the records, their task ids and constructors;
//! - [`attribution`]: who wrote a version ([`Author`], [`Attribution`]);
//! - [`file`]: appending under the journal's lock, and reading it ([`Appender`], [`Tail`]);
//! - [`segments`]: the files the journal is kept in, sealed past a size and compressed;
//! - [`state`]: the journal replayed into where every task and artifact stands;
//! - [`history`]: the questions the rules ask of that state, however it is kept;
//! - [`lookup`]: attribution looked up only once asked.

mod attribution;
mod file;
pub(crate) mod follow;
mod history;
mod lookup;
mod record;
pub(crate) mod segments;
mod state;

pub(crate) use attribution::{Attribution, Author};
#[cfg(test)]
pub(crate) use file::journal_path;
pub(crate) use file::{Appender, Durability, Tail, read_all, refuse_a_lost_journal};
pub(crate) use history::History;
pub(crate) use lookup::LazyAuthors;
pub(crate) use record::{
    Committed, Decision, Entry, Finish, Output, Reason, Record, Sandbox, Status, TaskId,
    now_rfc3339,
};
pub(crate) use segments::DEFAULT_SEGMENT_SIZE;
pub(crate) use state::{ArtifactInfo, ChainLink, FindTaskError, State, TaskInfo, TaskStatus};
