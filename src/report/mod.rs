//! The reports of what the journal knows, as values: built here once, printed by the
//! commands (`status`, `trace`, `who`) and returned by `baton mcp` as they are.

pub(crate) mod status;
pub(crate) mod trace;
pub(crate) mod who;
