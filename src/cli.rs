//! The command line as the user typed it: clap types only, no I/O (DESIGN §9).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "A folder as a shared workspace for a team of agents",
    long_about = "A folder as a shared workspace for a team of agents.\n\n\
        Drop a brief into briefs/; the daemon (`baton run`) starts the agents whose globs \
        match it; agents hand work to each other by file path; every artifact is \
        attributed in the journal and searchable.",
    after_help = "Examples:\n  \
        baton init my-team && cd my-team\n  \
        baton run\n  \
        baton drop --wait plan.md\n  \
        baton status\n\n\
        Exit codes: 0 success; 1 a failed operation, or something not found; 2 a usage or config error."
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
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// The shells `baton completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a workspace from the built-in template.
    #[command(
        after_help = "Examples:\n  baton init my-team\n  baton init            # in the current folder"
    )]
    Init {
        /// Where (default: the current folder).
        dir: Option<PathBuf>,
    },
    /// Run the content-factory example end to end in a fresh workspace.
    #[command(after_help = "Examples:\n  baton demo\n  baton demo /tmp/factory")]
    Demo {
        /// Where to create it (default: a new folder under the system temp folder).
        dir: Option<PathBuf>,
    },
    /// Run the daemon: watch the stages and dispatch agents.
    #[command(after_help = "Examples:\n  \
        baton run              # until Ctrl-C, SIGTERM or `baton stop`\n  \
        baton run --once       # drain what is pending, then exit (CI, batch jobs)")]
    Run {
        /// Drain all pending work, then exit (1 if a task ended dead, 130 if interrupted).
        #[arg(long)]
        once: bool,
    },
    /// Stop the running daemon gracefully, as SIGTERM does.
    #[command(after_help = "Examples:\n  baton stop\n  baton -w ~/my-team stop")]
    Stop,
    /// Publish a file into a stage atomically, attributed to `human`.
    #[command(after_help = "Examples:\n  \
        baton drop plan.md\n  \
        baton drop --wait plan.md           # and wait for what it sets off\n  \
        baton drop notes.md --stage drafts\n  \
        baton drop request.md --to legal")]
    Drop {
        /// The file to publish; its name is kept.
        file: PathBuf,
        /// The stage (default: the first one, usually `briefs`).
        #[arg(long, short = 's')]
        stage: Option<String>,
        /// Route it to this agent only (sets `to` in its front matter).
        #[arg(long, value_name = "AGENT")]
        to: Option<String>,
        /// The tasks it starts must be over by then: a duration ("2h") or an RFC 3339
        /// time (sets `deadline` in its front matter); what they delegate inherits it.
        #[arg(long, value_name = "WHEN")]
        deadline: Option<String>,
        /// What the tasks it starts, and everything they delegate, may spend, in the
        /// unit agents report as `cost` in result.toml (sets `budget`).
        #[arg(long, value_name = "N")]
        budget: Option<String>,
        /// Wait for the tasks it sets off (and theirs) to end; print how each ended.
        /// Exits 1 if one ended dead.
        #[arg(long)]
        wait: bool,
    },
    /// Agents, queue, running, held and dead tasks.
    #[command(after_help = "Examples:\n  baton status\n  baton status --json | jq '.dead'")]
    Status {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The activity feed from the journal.
    #[command(
        after_help = "Examples:\n  baton log -n 50\n  baton log --since 2h --agent writer\n  baton log --task 3fa9\n  baton log --follow\n  baton log --json | jq 'select(.kind == \"rejected\")'"
    )]
    Log {
        /// Only the last N records that match (read from the journal's end back).
        #[arg(short = 'n', long = "lines", value_name = "N")]
        lines: Option<usize>,
        /// Only records from this time on: RFC 3339, a date, or a duration ago (2h).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only records up to this time: RFC 3339, a date, or a duration ago.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only records of this agent's tasks and its writes.
        #[arg(long, value_name = "AGENT")]
        agent: Option<String>,
        /// Only records of this task (any unique prefix of its id).
        #[arg(long, value_name = "TASK")]
        task: Option<String>,
        /// Keep printing new activity.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Raw journal records, one JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The authorship history of one artifact.
    #[command(
        after_help = "Examples:\n  baton who drafts/plan.md\n  baton who drafts/plan.md --json"
    )]
    Who {
        /// The artifact, relative to the current folder or the workspace root.
        path: PathBuf,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The versions of an artifact, with who wrote each.
    #[command(
        after_help = "Examples:\n  baton versions drafts/plan.md\n  baton restore drafts/plan.md --version 1"
    )]
    Versions {
        /// The artifact, relative to the current folder or the workspace root.
        path: PathBuf,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put an earlier version of an artifact back, atomically, as `human`.
    #[command(after_help = "Examples:\n  \
        baton restore drafts/plan.md --version 1        # the first version `baton versions` lists\n  \
        baton restore drafts/plan.md --version 3fa9c2d1 # by (a prefix of) its content hash")]
    Restore {
        /// The artifact, relative to the current folder or the workspace root.
        path: PathBuf,
        /// The version: its number in `baton versions`, or a prefix of its hash.
        #[arg(long, value_name = "N|HASH")]
        version: String,
    },
    /// An agent run's stdout and stderr, and how the attempt ended.
    #[command(after_help = "Examples:\n  \
        baton logs drafts/plan.md            # the latest task that read or wrote it\n  \
        baton logs t-3fa9 --attempt 1\n  \
        baton logs t-3fa9 --tail 20 --follow")]
    Logs {
        /// A task id (any unique prefix), or a path: the latest task that read or wrote it.
        #[arg(value_name = "TASK|PATH")]
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
    /// Run a task again (a failed, dead, escalated or done one), with a fresh retry budget.
    #[command(after_help = "Examples:\n  baton retry t-3fa9")]
    Retry {
        /// A task id or any unique prefix of one.
        task: String,
    },
    /// End a queued, retrying, running or escalated task dead, "cancelled by human".
    #[command(
        after_help = "Examples:\n  baton cancel t-3fa9\n  baton cancel briefs/plan.md    # the latest task on it"
    )]
    Cancel {
        /// A task id (any unique prefix), or a path: the latest task that read or wrote it.
        #[arg(value_name = "TASK|PATH")]
        target: String,
    },
    /// Hand PATH to another agent: writes a brief pointing at it (no content copied)
    /// into the first stage; inside a task, into $BATON_OUT with `reply_to` set.
    #[command(after_help = "Examples:\n  \
        baton delegate --to reviewer drafts/plan.md --note \"Check the numbers.\"\n  \
        baton delegate --to writer briefs/ch1.md --writes drafts/ch1\n  \
        baton delegate --to worker parts/p1.md --ref data/q3.csv")]
    Delegate {
        /// The agent to hand it to.
        #[arg(long, value_name = "AGENT")]
        to: String,
        /// The artifact to hand on (in the workspace or, inside a task, in $BATON_OUT).
        path: PathBuf,
        /// The brief's body, verbatim: what to do with PATH.
        #[arg(long)]
        note: Option<String>,
        /// More paths the brief points at (repeatable).
        #[arg(long = "ref", value_name = "PATH")]
        refs: Vec<PathBuf>,
        /// Narrow what AGENT may write for this task to STAGE or a folder in it
        /// (repeatable); within AGENT's own `writes` and, inside a task, the delegator's.
        #[arg(long = "writes", value_name = "STAGE[/SUB]")]
        writes: Vec<String>,
        /// The delegate must be done by then: a duration or an RFC 3339 time, never
        /// later than the delegating task's own deadline (asking more is capped).
        #[arg(long, value_name = "WHEN")]
        deadline: Option<String>,
        /// What the delegate and what it delegates may spend, never more than the
        /// delegating task's chain has left (asking more is capped).
        #[arg(long, value_name = "N")]
        budget: Option<String>,
    },
    /// Commit the outputs of a task held for approval.
    #[command(
        after_help = "Examples:\n  baton approve t-3fa9\n  baton approve t-3fa9 --note \"Ship it.\""
    )]
    Approve {
        /// A task id or any unique prefix of one.
        task: String,
        /// Why, for the journal.
        #[arg(long)]
        note: Option<String>,
    },
    /// Supply the outputs of a task escalated to a person (its `fallback` list ends at
    /// `human`): each local file SRC becomes the workspace path DEST, committed as
    /// `human` in the task's place, and the task is done.
    #[command(after_help = "Examples:\n  \
        baton resolve t-3fa9 --file drafts/plan.md=./plan.md\n  \
        baton resolve t-3fa9 --file drafts/a.md=a.md --file drafts/b.md=b.md")]
    Resolve {
        /// A task id or any unique prefix of one.
        task: String,
        /// DEST=SRC: the workspace path, and the local file that becomes it.
        #[arg(long = "file", value_name = "DEST=SRC", required = true)]
        files: Vec<String>,
    },
    /// Discard the outputs of a task held for approval; the task ends dead with the note.
    #[command(after_help = "Examples:\n  baton reject t-3fa9 --note \"Not this quarter.\"")]
    Reject {
        /// A task id or any unique prefix of one.
        task: String,
        /// Why: the task's error, in the journal.
        #[arg(long)]
        note: String,
    },
    /// The delegation tree around an artifact or a task: who read and wrote what.
    #[command(
        after_help = "Examples:\n  baton trace briefs/launch.md\n  baton trace t-3fa9 --json"
    )]
    Trace {
        /// A workspace path or a task id (any unique prefix).
        #[arg(value_name = "PATH|TASK")]
        target: String,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The agent catalog: each agent's description, triggers, writes, delegates_to,
    /// limits and current load.
    #[command(after_help = "Examples:\n  baton agents\n  baton agents --json")]
    Agents {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the workspace to an LLM agent over MCP (stdio): tools to list, read, write,
    /// search and delegate under baton's guarantees, and resources with change
    /// notifications. stdout carries only the protocol; logs go to stderr.
    ///
    /// The identity: inside a task (BATON_TASK set) the task's agent, its writes staged in
    /// $BATON_OUT; else --agent NAME, its writes published at once and attributed to it;
    /// else `human`.
    #[command(after_help = "Examples:\n  \
        claude mcp add baton -- baton mcp -w ~/team\n  \
        baton mcp --agent writer\n  \
        baton mcp --read-only")]
    Mcp {
        /// Act as this configured agent (outside a task): its `writes` apply, and what
        /// it writes is attributed to it.
        #[arg(long, value_name = "NAME")]
        agent: Option<String>,
        /// Offer no tool that writes (write_file and delegate are not registered).
        #[arg(long)]
        read_only: bool,
    },
    /// Serve a live web page of the team's work on 127.0.0.1: now, the feed, each task's
    /// tree and logs, artifacts and their versions, search, and buttons to approve,
    /// reject, retry, cancel and drop. It prints the URL, which holds an access token.
    #[command(after_help = "Examples:\n  \
        baton ui\n  \
        baton ui --port 7411 --open\n  \
        baton ui -w ~/team")]
    Ui {
        /// The port on 127.0.0.1 (0: any free one).
        #[arg(long, value_name = "N", default_value_t = 0)]
        port: u16,
        /// Open the page in the default browser (xdg-open).
        #[arg(long)]
        open: bool,
    },
    /// Search the workspace (tantivy query syntax: `stage:drafts author:writer "a phrase"`).
    #[command(after_help = "Examples:\n  \
        baton search 'launch plan'\n  \
        baton search '\"exact phrase\" stage:drafts'\n  \
        baton search '*' --author writer --limit 20 --json")]
    Search {
        /// The query: words, "phrases", field:value, AND, OR, NOT, parentheses; `*` for all.
        query: String,
        /// Only artifacts in this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Only artifacts whose current version this agent (or `human`, `external`) wrote.
        #[arg(long, value_name = "AGENT")]
        author: Option<String>,
        /// At most this many hits (1 or more).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// One JSON document instead of text.
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
    #[command(after_help = "Examples:\n  echo '- one more' | baton write drafts/log.md")]
    Write {
        /// The artifact to write, in a stage.
        path: PathBuf,
    },
    /// Print PATH under its shared lock.
    #[command(after_help = "Examples:\n  baton read drafts/log.md")]
    Read {
        /// The artifact to print.
        path: PathBuf,
    },
    /// Run CMD holding PATH's exclusive lock: `baton lock drafts/notes.md -- ./update.sh`.
    #[command(
        after_help = "Examples:\n  baton lock drafts/log.md -- sh -c 'baton read drafts/log.md > /tmp/x'"
    )]
    Lock {
        /// The artifact to lock.
        path: PathBuf,
        /// The command to run, and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Bring the search index up to date, checking every file.
    #[command(after_help = "Examples:\n  baton index\n  baton index --rebuild")]
    Index {
        /// Start from an empty index, and rebuild the state store (.baton/state.db)
        /// from the journal.
        #[arg(long)]
        rebuild: bool,
    },
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        baton completions bash > ~/.local/share/bash-completion/completions/baton\n  \
        baton completions zsh > ~/.zfunc/_baton\n  \
        baton completions fish > ~/.config/fish/completions/baton.fish")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write man pages (baton.1, baton-run.1, …) into DIR.
    #[command(after_help = "Examples:\n  baton man ~/.local/share/man/man1 && man baton")]
    Man {
        /// The folder to write them into (created if needed).
        dir: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_argument_has_a_description_and_every_command_examples() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            assert!(sub.get_about().is_some(), "{name} has no description");
            let after = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                after.starts_with("Examples:\n"),
                "{name}'s help ends with no examples"
            );
            for arg in sub.get_arguments() {
                if arg.is_hide_set() {
                    continue;
                }
                assert!(
                    arg.get_help().is_some(),
                    "{name}: argument {} has no description",
                    arg.get_id()
                );
            }
        }
        cli.debug_assert();
    }
}
