//! One file per subcommand; output formatting lives here, never in the library core.
//! What several commands share: [`style`] (terminal colours), [`feed`] (the activity
//! feed's lines) and [`common`].

mod agents;
mod approve;
mod cancel;
mod common;
mod delegate;
mod demo;
mod drop;
mod feed;
mod help;
mod index;
mod init;
mod lock;
mod log;
mod logs;
mod read;
mod resolve;
mod retry;
mod run;
mod search;
mod status;
mod stop;
mod style;
mod trace;
mod versions;
mod who;
mod write;

use anyhow::Result;

use crate::cli::{Cli, Command, LogFormat};
use crate::workspace::Workspace;
use style::Style;

/// Runs the command; returns the exit code for a completed operation.
pub fn dispatch(cli: Cli) -> Result<u8> {
    let ws = cli.workspace.as_deref();
    if !matches!(cli.command, Command::Run { .. }) {
        // Not for the daemon: a closed log pipe must not kill it mid-commit.
        crate::sys::die_on_broken_pipe();
    } else {
        // Before anything is opened: what the daemon inherited is not the agents' to have.
        crate::sys::close_inherited_on_exec();
    }
    match cli.command {
        Command::Init { dir } => init::run(dir.as_deref().or(ws)),
        Command::Demo { dir } => demo::run(dir),
        Command::Run { once } => run::run(&locate(ws)?, once),
        Command::Drop {
            file,
            stage,
            to,
            deadline,
            budget,
            wait,
        } => drop::run(
            &locate(ws)?,
            &file,
            drop::Keys {
                stage: stage.as_deref(),
                to: to.as_deref(),
                deadline: deadline.as_deref(),
                budget: budget.as_deref(),
            },
            if wait {
                drop::Wait::ForTasks
            } else {
                drop::Wait::No
            },
        ),
        Command::Status { json } => status::run(&locate(ws)?, json),
        Command::Agents { json } => agents::run(&locate(ws)?, json),
        Command::Log {
            lines,
            since,
            until,
            agent,
            task,
            follow,
            json,
        } => {
            let filter = log::Filter {
                last: lines,
                since,
                until,
                agent,
                task,
            };
            log::run(&locate(ws)?, filter, follow, json)
        }
        Command::Who { path, json } => who::run(&locate(ws)?, &path, json),
        Command::Write { path } => write::run(&locate(ws)?, &path),
        Command::Read { path } => read::run(&locate(ws)?, &path),
        Command::Lock { path, command } => lock::run(&locate(ws)?, &path, &command),
        Command::Logs {
            target,
            attempt,
            tail,
            follow,
        } => logs::run(
            &locate(ws)?,
            &target,
            logs::Shown {
                attempt,
                tail,
                follow,
            },
        ),
        Command::Retry { task } => retry::run(&locate(ws)?, &task),
        Command::Delegate {
            to,
            path,
            note,
            refs,
            writes,
            deadline,
            budget,
        } => delegate::run(
            &locate(ws)?,
            &to,
            &path,
            delegate::Asked {
                note: note.as_deref(),
                refs: &refs,
                writes: &writes,
                deadline: deadline.as_deref(),
                budget: budget.as_deref(),
            },
        ),
        Command::Approve { task, note } => approve::approve(&locate(ws)?, &task, note.as_deref()),
        Command::Reject { task, note } => approve::reject(&locate(ws)?, &task, &note),
        Command::Resolve { task, files } => resolve::run(&locate(ws)?, &task, &files),
        Command::Trace { target, json } => trace::run(&locate(ws)?, &target, json),
        Command::Search {
            query,
            stage,
            author,
            limit,
            json,
            lenient,
            repeat,
        } => {
            let opts = crate::index::search::SearchOptions {
                stage,
                author,
                limit: limit as usize,
                lenient,
                ..Default::default()
            };
            search::run(ws, &query, opts, json, repeat)
        }
        Command::Mcp { agent, read_only } => {
            let dir = ws
                .map(std::path::Path::to_path_buf)
                .or_else(|| std::env::var_os("BATON_WORKSPACE").map(Into::into));
            crate::mcp::run(&locate(dir.as_deref())?, agent.as_deref(), read_only)
        }
        Command::Ui { port, open } => crate::ui::run(&locate(ws)?, port, open),
        Command::Index { rebuild } => index::run(&locate(ws)?, rebuild),
        Command::Stop => stop::run(&locate(ws)?),
        Command::Cancel { target } => cancel::run(&locate(ws)?, &target),
        Command::Versions { path, json } => versions::list(&locate(ws)?, &path, json),
        Command::Restore { path, version } => versions::restore(&locate(ws)?, &path, &version),
        Command::Completions { shell } => help::completions(shell),
        Command::Man { dir } => help::man(&dir),
    }
}

/// The workspace a command runs on; none there is a usage error (exit code 2).
fn locate(dir: Option<&std::path::Path>) -> Result<Workspace> {
    Workspace::locate(dir).map_err(|e| crate::error::usage!("{e:#}"))
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
