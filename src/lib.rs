//! baton: a folder as a shared workspace for a team of agents.
//!
//! A person drops a brief into a stage folder; the daemon dispatches the agents whose
//! globs match; agents hand work on by file path; every artifact is attributed in an
//! append-only journal. The contract is DESIGN.md; the data's path through these
//! modules is in ARCHITECTURE.md.
//!
//! Module map, from the command line down:
//! - [`cli`]: the command line as typed (clap); `commands`: one file per subcommand,
//!   all output formatting; `error`: the error kinds that choose the exit code.
//! - `daemon`: watcher, scheduler, runners: `baton run`.
//! - `commit`: a task's outputs made visible atomically; `approval`: a person's
//!   decision on held outputs; `route`: which tasks an artifact version starts; `join`:
//!   when a delegator runs again.
//! - `ledger`: the journal and its replayed state in step; `journal`: records, append,
//!   read, replay.
//! - `report`: what `status`, `trace` and `who` report, as values, for the commands and
//!   MCP.
//! - `store`: the journal's state in SQLite, derived and rebuildable, for reports and
//!   the daemon's questions about the past.
//! - `index`: the tantivy search index.
//! - `pidfile`: the daemon lock, and which daemon runs on a workspace.
//! - `act`: writing and delegating as a person, an agent or a task, for the CLI and MCP;
//!   `mcp`: `baton mcp`, the workspace as MCP tools and resources.
//! - `publish`: atomic replacement of an artifact; `lock`: sidecar path locks;
//!   `frontmatter`: `+++` TOML; `identity`: who a command acts as.
//! - `config`: `baton.toml` → a validated config; `catalog`: the agents described for
//!   whoever chooses whom to delegate to; `workspace`: the root, `.baton/`
//!   paths and `RelPath`; `progress`: progress bars; `sys`: every libc and `/proc` call.

pub mod cli;
mod commands;
mod error;

mod act;
mod approval;
mod beneath;
mod budget;
mod catalog;
mod commit;
mod config;
mod control;
mod daemon;
mod deadline;
mod escalation;
mod failpoint;
mod fallback;
mod frontmatter;
#[cfg(test)]
mod fuzzing;
mod identity;
mod index;
mod join;
mod journal;
mod ledger;
mod lock;
mod mcp;
mod pidfile;
mod progress;
mod publish;
mod report;
mod route;
mod store;
mod sys;
#[cfg(test)]
mod testing;
mod text;
mod ui;
mod workspace;

pub use commands::{dispatch, init_logging};
pub use error::exit_code;
