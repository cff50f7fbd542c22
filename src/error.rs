//! The error kinds that decide a command's exit code (DESIGN §9): 0 success, 1 a failed
//! operation or something not found, 2 a usage or config error.
//!
//! Commands return `anyhow::Error`; [`exit_code`] walks its chain for one of the kinds
//! below, so an error keeps its context (which path, what was attempted) and still
//! exits with the right code.

use crate::config::{Config, ConfigError};
use crate::index::search::BadQuery;
use crate::journal::FindTaskError;

/// An error in what the user asked for (exit code 2), as opposed to an operation that
/// failed (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// `Err(usage!("--to {agent}: …"))`: a [`UsageError`] as an `anyhow::Error`.
macro_rules! usage {
    ($($arg:tt)*) => {
        anyhow::Error::from($crate::error::UsageError(format!($($arg)*)))
    };
}
pub(crate) use usage;

/// Why an operation was refused, as a stable code: the MCP server answers with it, and
/// an agent or a script can act on it without parsing the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Code {
    /// A path that is not inside the workspace.
    OutsideWorkspace,
    /// A path that is no artifact: outside every stage, hidden, or a temporary name.
    NotAnArtifact,
    /// A folder where a file was meant.
    IsAFolder,
    /// A write outside the writer's `writes`.
    OutsideScope,
    /// No such file, task or version.
    NotFound,
    /// The target no longer holds the version the writer started from.
    StaleWrite,
    /// A write that would pass an approval gate (an agent's, outside a task).
    ApprovalRequired,
    /// No agent of that name in `baton.toml`.
    UnknownAgent,
    /// A delegation outside the delegator's `delegates_to`.
    DelegationRefused,
    /// An idempotency key reused for a different request.
    IdempotencyConflict,
    /// A search query that does not parse.
    BadQuery,
    /// A task prefix that names several tasks.
    AmbiguousTask,
    /// Arguments that are missing, of the wrong type or out of range.
    InvalidArguments,
    /// The disk (or the quota) is full.
    DiskFull,
    /// A file-system call did not answer in time.
    Timeout,
    /// Anything else: an I/O error, a corrupt file.
    Internal,
}

/// An operation refused, with its [`Code`]; the message says what to do instead.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Refused {
    pub(crate) code: Code,
    pub(crate) message: String,
}

/// A [`Refused`] as an `anyhow::Error`.
pub(crate) fn refuse(code: Code, message: impl Into<String>) -> anyhow::Error {
    Refused {
        code,
        message: message.into(),
    }
    .into()
}

/// The code for an error: the first [`Refused`] in its chain, else what its kind says.
pub(crate) fn code_of(err: &anyhow::Error) -> Code {
    for e in err.chain() {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return r.code;
        }
        if e.is::<BadQuery>() {
            return Code::BadQuery;
        }
        match e.downcast_ref::<FindTaskError>() {
            Some(FindTaskError::Ambiguous { .. }) => return Code::AmbiguousTask,
            Some(FindTaskError::NotFound(_)) => return Code::NotFound,
            None => {}
        }
        if e.is::<UsageError>() || e.is::<ConfigError>() {
            return Code::InvalidArguments;
        }
    }
    if is_disk_full(err) {
        return Code::DiskFull;
    }
    let not_found = err
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::NotFound);
    if not_found {
        Code::NotFound
    } else {
        Code::Internal
    }
}

/// The exit code for an error: 2 for usage, config and query errors (a task prefix that
/// names several tasks among them), 1 otherwise: a failed operation, or something not
/// found.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let usage = err.chain().any(|e| {
        let refused = e.downcast_ref::<Refused>();
        refused.is_some_and(|r| !matches!(r.code, Code::NotFound | Code::StaleWrite))
            || e.is::<UsageError>()
            || e.is::<ConfigError>()
            || e.is::<BadQuery>()
            || matches!(e.downcast_ref(), Some(FindTaskError::Ambiguous { .. }))
    });
    if usage { 2 } else { 1 }
}

/// Whether `err` comes from a full disk or an exhausted quota (`ENOSPC`, `EDQUOT`): a
/// failure of the machine, not of an agent or of what a user asked for.
pub(crate) fn is_disk_full(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(io_is_disk_full)
}

/// [`is_disk_full`] for one I/O error.
pub(crate) fn io_is_disk_full(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// The refusal of `flag NAME` where NAME is no agent of the workspace (exit code 2,
/// `unknown_agent` over MCP), listing the agents there are.
pub(crate) fn unknown_agent(cfg: &Config, flag: &str, name: &str) -> anyhow::Error {
    refuse(
        Code::UnknownAgent,
        format!(
            "{flag} {name}: no such agent; agents are {}",
            cfg.agents.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    )
}

/// The usage error for a `--stage` that names no stage of the workspace.
pub(crate) fn no_such_stage(cfg: &Config, stage: &str) -> anyhow::Error {
    usage!(
        "--stage {stage}: no such stage; stages are {}",
        cfg.stages.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn the_exit_code_follows_the_kind_through_added_context() {
        let usage = Err::<(), _>(usage!("--limit 0: give 1 or more"))
            .context("searching")
            .unwrap_err();
        assert_eq!(exit_code(&usage), 2);
        let failed = Err::<(), _>(std::io::Error::other("disk on fire"))
            .context("writing drafts/a.md")
            .unwrap_err();
        assert_eq!(exit_code(&failed), 1);
        let query = anyhow::Error::from(BadQuery {
            message: "x".into(),
        });
        assert_eq!(exit_code(&query), 2);
    }
}
