//! The command line as the user typed it: clap types only, no I/O (DESIGN §9).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "A folder as a shared workspace for a team of agents"
)]
pub struct Cli {
    /// The workspace (default: the nearest folder upward holding baton.toml).
    #[arg(short = 'w', long = "workspace", global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,

    /// Log format on stderr (levels from RUST_LOG).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a workspace from the built-in template.
    Init {
        /// Where (default: the current folder).
        dir: Option<PathBuf>,
    },
    /// Run the content-factory example end to end in a fresh workspace.
    Demo {
        /// Where to create it (default: a new folder under the system temp folder).
        dir: Option<PathBuf>,
    },
    /// Run the daemon: watch the stages and dispatch agents.
    Run {
        /// Drain all pending work, then exit (1 if any task ended dead).
        #[arg(long)]
        once: bool,
    },
    /// Publish a file into a stage atomically, attributed to `human`.
    Drop {
        file: PathBuf,
        /// The stage (default: the first one, usually `briefs`).
        #[arg(long, short = 's')]
        stage: Option<String>,
        /// Route it to this agent only (sets `to` in its front matter).
        #[arg(long)]
        to: Option<String>,
        /// Wait for the tasks it sets off (and theirs) to end; print how each ended.
        /// Exits 1 if one ended dead.
        #[arg(long)]
        wait: bool,
    },
    /// Agents, queue, running, held and dead tasks.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The activity feed from the journal.
    Log {
        /// Keep printing new activity.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Raw journal records, one JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The authorship history of one artifact.
    Who {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// An agent run's stdout and stderr, and how the attempt ended.
    Logs {
        /// A task id (any unique prefix), or a path: the latest task that read or wrote it.
        target: String,
        /// Which attempt (default: the last).
        #[arg(long, value_name = "N")]
        attempt: Option<u32>,
        /// Only the last N lines of each log.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// Keep printing what the agent writes until its attempt ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Run a task again (a failed, dead or done one).
    Retry { task: String },
    /// Hand PATH to another agent: writes a brief pointing at it (no content copied)
    /// into the first stage; inside a task, into $BATON_OUT with `reply_to` set.
    Delegate {
        /// The agent to hand it to.
        #[arg(long)]
        to: String,
        path: PathBuf,
        /// The brief's body, verbatim: what to do with PATH.
        #[arg(long)]
        note: Option<String>,
        /// More paths the brief points at (repeatable).
        #[arg(long = "ref", value_name = "PATH")]
        refs: Vec<PathBuf>,
    },
    /// Commit the outputs of a task held for approval.
    Approve {
        task: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Discard the outputs of a task held for approval; the task ends dead with the note.
    Reject {
        task: String,
        #[arg(long)]
        note: String,
    },
    /// The delegation tree around an artifact or a task: who read and wrote what.
    Trace {
        /// A workspace path or a task id (any unique prefix).
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// Search the workspace (tantivy query syntax: `stage:drafts author:writer "a phrase"`).
    Search {
        query: String,
        #[arg(long)]
        stage: Option<String>,
        #[arg(long)]
        author: Option<String>,
        /// At most this many hits (1 or more).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        #[arg(long)]
        json: bool,
        /// Drop what does not parse instead of failing.
        #[arg(long)]
        lenient: bool,
        /// For benchmarks: run the query this many times in-process and print the
        /// latency percentiles on stderr.
        #[arg(long, hide = true, default_value_t = 0)]
        repeat: usize,
    },
    /// Write stdin to PATH atomically, under its lock, attributed in the journal (to
    /// the agent and task inside a task, else to `human`).
    Write { path: PathBuf },
    /// Print PATH under its shared lock.
    Read { path: PathBuf },
    /// Run CMD holding PATH's exclusive lock: `baton lock drafts/notes.md -- ./update.sh`.
    Lock {
        path: PathBuf,
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Bring the search index up to date.
    Index {
        /// Start from an empty index.
        #[arg(long)]
        rebuild: bool,
    },
}
