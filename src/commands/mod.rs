//! One file per subcommand; output formatting lives here, never in the library core.

pub mod approve;
pub mod delegate;
pub mod demo;
pub mod drop;
pub mod index;
pub mod init;
pub mod lock;
pub mod log;
pub mod logs;
pub mod read;
pub mod retry;
pub mod run;
pub mod search;
pub mod status;
pub mod trace;
pub mod who;
pub mod write;

use std::io::IsTerminal;

use anyhow::Result;

use crate::cli::{Cli, Command, LogFormat};
use crate::config::Config;
use crate::workspace::Workspace;

/// Runs the command; returns the exit code for a completed operation.
pub fn dispatch(cli: Cli) -> Result<u8> {
    let ws = cli.workspace.as_deref();
    if !matches!(cli.command, Command::Run { .. }) {
        die_on_broken_pipe();
    }
    match cli.command {
        Command::Init { dir } => init::run(dir.as_deref().or(ws)),
        Command::Demo { dir } => demo::run(dir),
        Command::Run { once } => run::run(&Workspace::locate(ws)?, once),
        Command::Drop { file, stage, to } => drop::run(
            &Workspace::locate(ws)?,
            &file,
            stage.as_deref(),
            to.as_deref(),
        ),
        Command::Status { json } => status::run(&Workspace::locate(ws)?, json),
        Command::Log { follow, json } => log::run(&Workspace::locate(ws)?, follow, json),
        Command::Who { path, json } => who::run(&Workspace::locate(ws)?, &path, json),
        Command::Write { path } => write::run(&Workspace::locate(ws)?, &path),
        Command::Read { path } => read::run(&Workspace::locate(ws)?, &path),
        Command::Lock { path, command } => lock::run(&Workspace::locate(ws)?, &path, &command),
        Command::Logs { task, attempt } => logs::run(&Workspace::locate(ws)?, &task, attempt),
        Command::Retry { task } => retry::run(&Workspace::locate(ws)?, &task),
        Command::Delegate {
            to,
            path,
            note,
            refs,
        } => delegate::run(&Workspace::locate(ws)?, &to, &path, note.as_deref(), &refs),
        Command::Approve { task, note } => {
            approve::approve(&Workspace::locate(ws)?, &task, note.as_deref())
        }
        Command::Reject { task, note } => approve::reject(&Workspace::locate(ws)?, &task, &note),
        Command::Trace { target, json } => trace::run(&Workspace::locate(ws)?, &target, json),
        Command::Search {
            query,
            stage,
            author,
            limit,
            json,
            lenient,
            repeat,
        } => {
            if query.trim().is_empty() {
                return Err(crate::UsageError(
                    "the query is empty: give the words to look for, or `*` for everything \
                     (narrowed with --stage or --author)"
                        .into(),
                )
                .into());
            }
            let opts = crate::index::search::SearchOptions {
                stage,
                author,
                limit: limit as usize,
                lenient,
                ..Default::default()
            };
            search::run(&Workspace::locate(ws)?, &query, opts, json, repeat)
        }
        Command::Index { rebuild } => index::run(&Workspace::locate(ws)?, rebuild),
    }
}

/// Logs go to stderr: `RUST_LOG` sets levels (default: info for the daemon, warnings
/// otherwise), `--log-format json` makes them JSON lines.
pub fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match cli.command {
        Command::Run { .. } | Command::Demo { .. } => "baton=info",
        _ => "baton=warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // A log line that cannot be written (stderr closed) is dropped; the default would
    // report it with eprintln!, which panics on a closed stderr.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(Style::stderr().color)
            .with_target(false)
            .compact()
            .init(),
    }
}

/// Restores the default SIGPIPE action, so output into a closed pipe (`baton log | head`)
/// ends the process quietly like any Unix tool, instead of a panic. Not for the daemon:
/// a closed log pipe must not kill it mid-commit.
pub fn die_on_broken_pipe() {
    // SAFETY: setting a signal disposition to its default; no handler involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Loads the workspace's config, as every command that needs agents or stages does.
pub fn load_config(ws: &Workspace) -> Result<Config> {
    Ok(Config::load(ws)?)
}

/// The usage error for a `--stage` that names no stage of the workspace.
pub fn no_such_stage(cfg: &Config, stage: &str) -> anyhow::Error {
    crate::UsageError(format!(
        "--stage {stage}: no such stage; stages are {}",
        cfg.stages.join(", ")
    ))
    .into()
}

/// Terminal styling: colour only on a terminal and never with `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn stdout() -> Style {
        Style {
            color: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
    pub fn stderr() -> Style {
        Style {
            color: std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    pub fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
    pub fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
    pub fn green(self, t: &str) -> String {
        self.paint("32", t)
    }
    pub fn red(self, t: &str) -> String {
        self.paint("31", t)
    }
    pub fn yellow(self, t: &str) -> String {
        self.paint("33", t)
    }
    pub fn cyan(self, t: &str) -> String {
        self.paint("36", t)
    }
}
