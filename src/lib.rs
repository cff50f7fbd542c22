//! baton: a folder as a shared workspace for a team of agents.
//!
//! A person drops a brief into a stage folder; the daemon dispatches the agents whose
//! globs match; agents hand work on by file path; every artifact is attributed in an
//! append-only journal. The contract is DESIGN.md; the moving parts are in
//! ARCHITECTURE.md.
//!
//! Module map:
//! - [`cli`]: the command line as typed (clap); [`commands`]: one file per subcommand.
//! - [`config`]: `baton.toml` → validated [`config::Config`].
//! - [`workspace`]: the root, `.baton/` paths, and [`workspace::RelPath`].
//! - [`journal`]: records, append, replay; [`ledger`]: journal + state in step.
//! - [`route`]: pure routing of an artifact to tasks; [`frontmatter`]: `+++` TOML.
//! - [`lock`]: sidecar path locks; [`publish`]: atomic replacement of an artifact.
//! - [`daemon`]: watcher, scheduler, runner, commit.

pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod frontmatter;
pub mod index;
pub mod join;
pub mod journal;
pub mod ledger;
pub mod lock;
pub mod progress;
pub mod publish;
pub mod route;
pub mod workspace;

/// An error in what the user asked for (exit code 2), as opposed to an operation that
/// failed (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error: 2 for usage and config errors, 1 otherwise (DESIGN §9).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let usage = err.chain().any(|e| {
        e.is::<UsageError>() || e.is::<config::ConfigError>() || e.is::<index::search::BadQuery>()
    });
    if usage { 2 } else { 1 }
}
