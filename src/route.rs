//! Routing: an artifact version + the config + the journal's state → the tasks to
//! queue, or why none may run.
//!
//! - [`rules`]: the rules, PURE (which agents, depth, cycles, `delegates_to`,
//!   `max_children`, a delegation's narrowed `writes`);
//! - [`version`]: a version as read from disk fed to them, its front matter checked and
//!   its `refs` resolved (the one step that looks at the file system).

mod rules;
mod version;

pub(crate) use rules::narrowing_allowed;
pub(crate) use version::{Takers, Version, check_from_person, route_version};
