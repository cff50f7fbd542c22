//! Helpers more than one command uses.

use anyhow::Result;

use crate::error::usage;
use crate::journal::{State, TaskInfo};

/// The task a TASK argument names (any unique prefix of its id, DESIGN §9), or a usage
/// error saying what it matched.
pub(crate) fn find_task<'s>(state: &'s State, prefix: &str) -> Result<&'s TaskInfo> {
    state.find_task(prefix).map_err(|e| usage!("{e}"))
}
