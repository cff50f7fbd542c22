//! `baton.toml`: raw serde types as the user typed them → a validated [`Config`].
//!
//! Every value that can be wrong keeps its span, so each error names the file, line and
//! column and says what was expected (DESIGN §2). Unknown keys are errors.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use toml::Spanned;

use crate::workspace::{CONFIG_FILE, RelPath, Workspace};

/// A config error with its place in the file, rendered like a compiler diagnostic.
#[derive(Debug, Clone)]
pub(crate) struct ConfigError {
    pub(crate) file: PathBuf,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
    /// The offending source line, for the caret display.
    source_line: String,
    width: usize,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if !self.source_line.is_empty() {
            let gutter = self.line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{} | {}\n{:gutter$} | {}{}",
                "",
                self.line,
                self.source_line,
                "",
                " ".repeat(self.column.saturating_sub(1)),
                "^".repeat(self.width.max(1)),
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// What an agent runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Run {
    /// Executed directly; `{input}`, `{out}` and `{task}` are substituted per argument.
    Argv(Vec<String>),
    /// Run by `sh -c`; never substituted (file names cannot inject), read `$BATON_INPUT`.
    Shell(String),
}

/// One `[agents.NAME]` table, validated.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub(crate) name: String,
    /// The globs as written, for display.
    pub(crate) on: Vec<String>,
    /// The globs compiled: `*` stays within one folder, `**` crosses folders.
    pub(crate) on_set: GlobSet,
    pub(crate) run: Run,
    /// The stages its outputs may go to.
    pub(crate) writes: Vec<String>,
    /// Agent processes at once.
    pub(crate) concurrency: usize,
    /// How long one attempt may run before its process group is stopped.
    pub(crate) timeout: Duration,
    /// Attempts after the first failure before the task is dead.
    pub(crate) retries: u32,
    /// The first retry's delay; doubled for each one after.
    pub(crate) backoff: Duration,
    /// `None` means the agent may delegate to any agent.
    pub(crate) delegates_to: Option<Vec<String>>,
    /// Each of stdout and stderr is kept up to this many bytes per attempt.
    pub(crate) max_log_bytes: u64,
    /// An attempt's staged outputs may hold this many bytes at most, in all.
    pub(crate) max_output_bytes: u64,
    /// And this many files.
    pub(crate) max_output_files: u64,
    /// `sandbox`: `Some(true)` asks for the Landlock sandbox (the daemon refuses to start
    /// on a kernel without it), `Some(false)` turns it off, `None` uses it where the
    /// kernel offers it.
    pub(crate) sandbox: Option<bool>,
    /// Folders (or files) outside the workspace the sandboxed agent may also write, `~/`
    /// expanded: the state real LLM CLIs keep, such as `~/.claude`.
    pub(crate) sandbox_writes: Vec<PathBuf>,
    /// What it does, for the people and the agents choosing whom to hand work to.
    pub(crate) description: Option<String>,
    /// Globs one of its outputs must match, as written: an attempt that exits 0 with no
    /// such output (and delegated nothing) failed. Empty: anything goes, even nothing.
    pub(crate) expects: Vec<String>,
    pub(crate) expects_set: GlobSet,
    /// Commands run on an attempt's staged outputs before they are committed, each an
    /// argv with `{out}`, `{input}` and `{task}` filled in; one that fails fails the
    /// attempt, with its output as the reason.
    pub(crate) checks: Vec<Vec<String>>,
    /// At most this many starts per interval (`rate = "20/m"`): LLM APIs have quotas.
    pub(crate) rate: Option<Rate>,
    /// Exit codes that mean the task cannot succeed (bad input, a config error): the
    /// task is dead at once, its retries unspent.
    pub(crate) fatal_exits: Vec<i32>,
    /// Why its program cannot be started, as found when the config was read: `baton
    /// run` refuses to start on it; every other command warns and goes on.
    pub(crate) broken: Option<ConfigError>,
}

impl Agent {
    pub(crate) fn triggered_by(&self, path: &RelPath) -> bool {
        self.on_set.is_match(path.as_str())
    }

    pub(crate) fn may_write(&self, path: &RelPath) -> bool {
        self.writes.iter().any(|s| s == path.first())
    }

    /// The delay before retry number `failures` (1-based): `backoff` doubled each time,
    /// capped at five minutes.
    pub(crate) fn backoff_for(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

/// A rate limit: at most `starts` attempts begin in any `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    pub(crate) starts: u32,
    pub(crate) per: Duration,
}

impl Rate {
    /// `N/s`, `N/m`, `N/h`, or `N/DURATION` (`3/10s`).
    pub(crate) fn parse(text: &str) -> Option<Rate> {
        let (n, per) = text.trim().split_once('/')?;
        let starts: u32 = n.trim().parse().ok().filter(|&n| n > 0)?;
        let per = match per.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            other => humantime::parse_duration(other).ok()?,
        };
        (!per.is_zero()).then_some(Rate { starts, per })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.starts,
            humantime::format_duration(self.per)
        )
    }
}

/// The longest retry delay, however many attempts failed.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One `[stages.NAME]` table.
#[derive(Debug, Clone, Default)]
pub(crate) struct StageOptions {
    /// Outputs into this stage wait for `baton approve`.
    pub(crate) approval: bool,
}

/// `baton.toml`, validated.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The watched top-level folders, in order; the first takes dropped and delegated
    /// briefs.
    pub(crate) stages: Vec<String>,
    /// The longest chain of tasks one brief may set off.
    pub(crate) max_depth: u32,
    /// How long a file written in place must stay quiet to count as ready.
    pub(crate) settle: Duration,
    /// The most tasks one task's outputs may start.
    pub(crate) max_children: u32,
    /// The deadline of a task no brief and no delegator gave one (`default_deadline`).
    pub(crate) default_deadline: Option<Duration>,
    /// The budget of a task no brief and no budgeted chain gave one (`default_budget`).
    pub(crate) default_budget: Option<f64>,
    pub(crate) agents: BTreeMap<String, Agent>,
    pub(crate) stage_options: HashMap<String, StageOptions>,
    /// Files over this are indexed by path and metadata only (`[search] max_file_size`).
    pub(crate) max_file_size: u64,
    pub(crate) journal: JournalOptions,
}

/// `[journal]`: how the journal is kept in segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JournalOptions {
    /// A segment holding this much is sealed and a new one begun.
    pub(crate) segment_size: u64,
    /// Whether the daemon compresses sealed segments (all but the newest) with zstd.
    pub(crate) compress: bool,
}

impl Config {
    /// Reads and validates `baton.toml` of `ws`.
    pub(crate) fn load(ws: &Workspace) -> Result<Config, ConfigError> {
        let path = ws.config_path();
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            file: path.clone(),
            line: 1,
            column: 1,
            message: format!("cannot read: {e}"),
            source_line: String::new(),
            width: 0,
        })?;
        Config::parse(&text, &ws.root)
    }

    /// Validates `text` as the config of a workspace rooted at `root` (programs named by
    /// relative paths are looked up there).
    pub(crate) fn parse(text: &str, root: &Path) -> Result<Config, ConfigError> {
        let src = Source { text };
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| src.error(e.span().unwrap_or(0..0), e.message().trim().to_string()))?;

        let ws = raw.workspace.unwrap_or_default();
        let stages = match ws.stages {
            None => DEFAULT_STAGES.iter().map(|s| s.to_string()).collect(),
            Some(list) => src.stages(list)?,
        };
        let stage_options = src.stage_options(raw.stages.unwrap_or_default(), &stages)?;
        let raw_agents = raw.agents.unwrap_or_default();
        let names: Vec<String> = raw_agents.keys().map(|k| k.get_ref().clone()).collect();
        let known = Known {
            stages: &stages,
            agents: &names,
            root,
        };
        let mut agents = BTreeMap::new();
        for (name, raw_agent) in raw_agents {
            let agent = src.agent(name, raw_agent, &known)?;
            agents.insert(agent.name.clone(), agent);
        }
        let max_file_size = src.size(
            raw.search.unwrap_or_default().max_file_size,
            DEFAULT_MAX_FILE_SIZE,
            "`max_file_size`",
        )?;
        let raw_journal = raw.journal.unwrap_or_default();
        let journal = JournalOptions {
            segment_size: src.size(
                raw_journal.segment_size,
                crate::journal::DEFAULT_SEGMENT_SIZE,
                "`segment_size`",
            )?,
            compress: raw_journal.compress.unwrap_or(true),
        };
        let default_deadline = match ws.default_deadline {
            None => None,
            Some(raw) => match humantime::parse_duration(raw.get_ref().trim()) {
                Ok(d) if !d.is_zero() => Some(d),
                _ => {
                    return Err(src.error(
                        raw.span(),
                        format!(
                            "bad duration `{}` for `default_deadline`: expected a number and a \
                             unit, like \"30m\" or \"2h\"",
                            raw.get_ref()
                        ),
                    ));
                }
            },
        };
        let default_budget = match ws.default_budget {
            None => None,
            Some(raw) => Some(
                crate::budget::parse(raw.get_ref())
                    .map_err(|e| src.error(raw.span(), format!("`default_budget`: {e}")))?,
            ),
        };
        Ok(Config {
            stages,
            max_depth: ws.max_depth.unwrap_or(8),
            default_deadline,
            default_budget,
            settle: Duration::from_millis(ws.settle_ms.unwrap_or(20)),
            max_children: ws.max_children.unwrap_or(64),
            agents,
            stage_options,
            max_file_size,
            journal,
        })
    }

    /// Every agent can be started, as far as can be told before starting it: the first
    /// that cannot, otherwise.
    pub(crate) fn check_runnable(&self) -> Result<(), ConfigError> {
        match self.agents.values().find_map(|a| a.broken.clone()) {
            Some(broken) => Err(broken),
            None => Ok(()),
        }
    }

    pub(crate) fn is_stage(&self, name: &str) -> bool {
        self.stages.iter().any(|s| s == name)
    }

    /// Whether `path` is an artifact: inside a stage and not an ignored name.
    pub(crate) fn is_artifact(&self, path: &RelPath) -> bool {
        self.is_stage(path.first()) && path.as_str().contains('/') && !path.is_ignored()
    }

    pub(crate) fn needs_approval(&self, stage: &str) -> bool {
        self.stage_options.get(stage).is_some_and(|o| o.approval)
    }
}

const DEFAULT_STAGES: [&str; 4] = ["briefs", "drafts", "reviews", "published"];

/// An agent's stdout and stderr are each kept up to this per attempt, by default.
const DEFAULT_MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;
/// Per agent, what one attempt may stage (issue 13): enough for any real document
/// team, little enough that a runaway agent cannot fill the disk through a commit.
const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1 << 30;
const DEFAULT_MAX_OUTPUT_FILES: u64 = 10_000;

/// Files above this are indexed by path and metadata only (DESIGN §8).
pub(crate) const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Letters, digits, `-`, `_` and `.`, not starting with `.`: a stage or agent name.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// What an agent's settings are checked against.
struct Known<'a> {
    stages: &'a [String],
    agents: &'a [String],
    /// Programs named by relative paths are looked up here.
    root: &'a Path,
}

/// The config's text, for errors that point into it.
struct Source<'a> {
    text: &'a str,
}

impl Source<'_> {
    /// An error at `span` of the text, with its line shown and underlined.
    fn error(&self, span: Range<usize>, message: String) -> ConfigError {
        let text = self.text;
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let width = text[start..span.end.min(line_end).max(start)]
            .chars()
            .count();
        ConfigError {
            file: PathBuf::from(CONFIG_FILE),
            line,
            column,
            message,
            source_line: text[line_start..line_end].to_string(),
            width,
        }
    }

    fn stages(&self, list: Spanned<Vec<Spanned<String>>>) -> Result<Vec<String>, ConfigError> {
        if list.get_ref().is_empty() {
            return Err(self.error(
                list.span(),
                "`stages` is empty: expected at least one folder name".into(),
            ));
        }
        let mut seen = Vec::new();
        for stage in list.into_inner() {
            let name = stage.get_ref();
            if !is_plain_name(name) {
                return Err(self.error(
                    stage.span(),
                    format!(
                        "stage `{name}` is not a plain folder name: expected letters, digits, `-`, `_` or `.`, not starting with `.`"
                    ),
                ));
            }
            if seen.contains(name) {
                return Err(self.error(stage.span(), format!("stage `{name}` is listed twice")));
            }
            seen.push(stage.into_inner());
        }
        Ok(seen)
    }

    fn stage_options(
        &self,
        raw: BTreeMap<Spanned<String>, RawStage>,
        stages: &[String],
    ) -> Result<HashMap<String, StageOptions>, ConfigError> {
        let mut options = HashMap::new();
        for (name, raw_stage) in raw {
            if !stages.contains(name.get_ref()) {
                return Err(self.error(
                    name.span(),
                    format!(
                        "[stages.{}] names no stage: expected one of {}",
                        name.get_ref(),
                        stages.join(", ")
                    ),
                ));
            }
            let approval = raw_stage.approval.unwrap_or(false);
            options.insert(name.into_inner(), StageOptions { approval });
        }
        Ok(options)
    }

    fn agent(
        &self,
        name: Spanned<String>,
        raw: RawAgent,
        known: &Known,
    ) -> Result<Agent, ConfigError> {
        let name_span = name.span();
        let name = name.into_inner();
        if !is_plain_name(&name) || name == "human" || name == "external" {
            return Err(self.error(
                name_span,
                format!(
                    "agent name `{name}` is not allowed: expected letters, digits, `-`, `_` or `.`; `human` and `external` are reserved"
                ),
            ));
        }
        let (on, on_set) = self.on(&name, name_span.clone(), raw.on.unwrap_or_default(), known)?;
        let Some(run) = raw.run else {
            return Err(self.error(
                name_span,
                format!(
                    "agent `{name}` has no `run`: expected an argv array like [\"agents/{name}.sh\"] or a shell string"
                ),
            ));
        };
        let (run, broken) = self.run(&name, run, known)?;
        let (expects, expects_set) = self.on(
            &name,
            name_span.clone(),
            raw.expects.unwrap_or_default(),
            known,
        )?;
        let writes = self.names_of(
            &name,
            "writes",
            raw.writes.unwrap_or_default(),
            known.stages,
            "a stage",
        )?;
        let concurrency = match raw.concurrency {
            Some(c) if *c.get_ref() == 0 => {
                return Err(self.error(
                    c.span(),
                    format!("agent `{name}`: `concurrency` must be at least 1"),
                ));
            }
            Some(c) => c.into_inner() as usize,
            None => 1,
        };
        let timeout_span = raw.timeout.as_ref().map(|t| t.span());
        let timeout = self.duration(raw.timeout, Duration::from_secs(600), &name, "timeout")?;
        if timeout.is_zero() {
            return Err(self.error(
                timeout_span.unwrap_or(name_span),
                format!(
                    "agent `{name}`: `timeout` must be longer than zero, like \"30s\" or \"10m\""
                ),
            ));
        }
        let backoff = self.duration(raw.backoff, Duration::from_secs(2), &name, "backoff")?;
        let max_log_bytes = self.size(
            raw.max_log_bytes,
            DEFAULT_MAX_LOG_BYTES,
            &format!("agent `{name}`: `max_log_bytes`"),
        )?;
        let max_output_bytes = self.size(
            raw.max_output_bytes,
            DEFAULT_MAX_OUTPUT_BYTES,
            &format!("agent `{name}`: `max_output_bytes`"),
        )?;
        let max_output_files = match raw.max_output_files {
            None => DEFAULT_MAX_OUTPUT_FILES,
            Some(n) if *n.get_ref() > 0 => *n.get_ref(),
            Some(n) => {
                return Err(self.error(
                    n.span(),
                    format!("agent `{name}`: `max_output_files` must be at least 1"),
                ));
            }
        };
        let sandbox_writes = raw
            .sandbox_writes
            .unwrap_or_default()
            .into_iter()
            .map(|p| self.sandbox_write(&name, p))
            .collect::<Result<_, _>>()?;
        let rate = match raw.rate {
            None => None,
            Some(text) => Some(Rate::parse(text.get_ref()).ok_or_else(|| {
                self.error(
                    text.span(),
                    format!(
                        "agent `{name}`: bad `rate` `{}`: expected starts per interval, like \
                         \"20/m\", \"5/s\", \"100/h\" or \"3/10s\"",
                        text.get_ref()
                    ),
                )
            })?),
        };
        let mut checks = Vec::new();
        for check in raw.checks.unwrap_or_default() {
            if check.get_ref().first().is_none_or(|p| p.trim().is_empty()) {
                return Err(self.error(
                    check.span(),
                    format!(
                        "agent `{name}`: a `checks` entry is an argv array with a program first, \
                         like [\"scripts/check.sh\", \"{{out}}\"]"
                    ),
                ));
            }
            checks.push(check.into_inner());
        }
        let mut fatal_exits = Vec::new();
        for code in raw.fatal_exits.unwrap_or_default() {
            let n = *code.get_ref();
            if !(1..=255).contains(&n) || n == 75 {
                return Err(self.error(
                    code.span(),
                    format!(
                        "agent `{name}`: `fatal_exits` entry {n}: give exit codes from 1 to 255 \
                         other than 75 (EX_TEMPFAIL, which always means \"try again later\")"
                    ),
                ));
            }
            fatal_exits.push(n as i32);
        }
        let delegates_to = match raw.delegates_to {
            None => None,
            Some(list) => {
                Some(self.names_of(&name, "delegates_to", list, known.agents, "an agent")?)
            }
        };
        Ok(Agent {
            name,
            on,
            on_set,
            run,
            writes,
            concurrency,
            timeout,
            retries: raw.retries.unwrap_or(2),
            backoff,
            delegates_to,
            max_log_bytes,
            max_output_bytes,
            max_output_files,
            sandbox: raw.sandbox,
            sandbox_writes,
            description: raw.description,
            expects,
            expects_set,
            checks,
            rate,
            fatal_exits,
            broken,
        })
    }

    /// One `sandbox_writes` entry: an absolute path, or one under the home folder
    /// (`~/…`). A relative path is refused: relative to what the agent's folder is would
    /// be a guess, and the workspace itself is never granted.
    fn sandbox_write(&self, name: &str, path: Spanned<String>) -> Result<PathBuf, ConfigError> {
        let span = path.span();
        let text = path.into_inner();
        let expanded = match text.strip_prefix("~/") {
            Some(rest) => match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                Some(home) => PathBuf::from(home).join(rest),
                None => {
                    return Err(self.error(
                        span,
                        format!(
                            "agent `{name}`: `sandbox_writes` entry `{text}` starts with `~/`, but HOME is not set"
                        ),
                    ));
                }
            },
            None => PathBuf::from(&text),
        };
        if !expanded.is_absolute() || text.split('/').any(|c| c == "..") {
            return Err(self.error(
                span,
                format!(
                    "agent `{name}`: `sandbox_writes` entry `{text}` must be an absolute path or start with `~/`, without `..`"
                ),
            ));
        }
        Ok(expanded)
    }

    /// A size setting, `what` as a message names it: bytes, or a string with a unit.
    fn size(
        &self,
        value: Option<Spanned<toml::Value>>,
        default: u64,
        what: &str,
    ) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(value) => parse_size(value.get_ref()).ok_or_else(|| {
                self.error(
                    value.span(),
                    format!("{what} must be a number of bytes or a size like \"16MiB\" or \"1GB\""),
                )
            }),
        }
    }

    /// The `on` globs, as written and compiled.
    fn on(
        &self,
        name: &str,
        name_span: Range<usize>,
        globs: Vec<Spanned<String>>,
        known: &Known,
    ) -> Result<(Vec<String>, GlobSet), ConfigError> {
        let mut on = Vec::new();
        let mut set = GlobSetBuilder::new();
        for glob in globs {
            let text = glob.get_ref();
            let first = text.split('/').next().unwrap_or("");
            if !known.stages.iter().any(|s| s == first) || !text.contains('/') {
                return Err(self.error(
                    glob.span(),
                    format!(
                        "agent `{name}`: glob `{text}` does not start in a stage: expected `STAGE/…` with STAGE one of {}",
                        known.stages.join(", ")
                    ),
                ));
            }
            let compiled: Glob = GlobBuilder::new(text)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    self.error(
                        glob.span(),
                        format!("agent `{name}`: bad glob `{text}`: {}", e.kind()),
                    )
                })?;
            set.add(compiled);
            on.push(glob.into_inner());
        }
        let set = set
            .build()
            .map_err(|e| self.error(name_span, format!("agent `{name}`: {e}")))?;
        Ok((on, set))
    }

    /// The agent's `run`, and why its program cannot be started, if it cannot.
    fn run(
        &self,
        name: &str,
        run: Spanned<toml::Value>,
        known: &Known,
    ) -> Result<(Run, Option<ConfigError>), ConfigError> {
        let span = run.span();
        match run.into_inner() {
            toml::Value::String(s) if !s.trim().is_empty() => Ok((Run::Shell(s), None)),
            toml::Value::Array(items) if !items.is_empty() => {
                let mut argv = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => argv.push(s),
                        other => {
                            return Err(self.error(
                                span,
                                format!(
                                    "agent `{name}`: `run` holds a {}, expected strings only",
                                    other.type_str()
                                ),
                            ));
                        }
                    }
                }
                if argv[0].is_empty() {
                    return Err(self.error(
                        span,
                        format!("agent `{name}`: `run` starts with an empty program"),
                    ));
                }
                let broken = check_program(&argv[0], known.root)
                    .err()
                    .map(|m| self.error(span, format!("agent `{name}`: {m}")));
                Ok((Run::Argv(argv), broken))
            }
            _ => Err(self.error(
                span,
                format!(
                    "agent `{name}`: `run` must be a non-empty argv array of strings or a shell string"
                ),
            )),
        }
    }

    /// The names in `list` (the value of `key` of agent `agent`), each of which must
    /// be one of `known` (`what` they are: "a stage", "an agent").
    fn names_of(
        &self,
        agent: &str,
        key: &str,
        list: Vec<Spanned<String>>,
        known: &[String],
        what: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for name in list {
            if !known.contains(name.get_ref()) {
                return Err(self.error(
                    name.span(),
                    format!(
                        "agent `{agent}`: `{key}` names `{}`, which is not {what}: expected one of {}",
                        name.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
            out.push(name.into_inner());
        }
        Ok(out)
    }

    fn duration(
        &self,
        raw: Option<Spanned<String>>,
        default: Duration,
        agent: &str,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = raw else { return Ok(default) };
        humantime::parse_duration(raw.get_ref().trim()).map_err(|_| {
            self.error(
                raw.span(),
                format!(
                    "agent `{agent}`: bad duration `{}` for `{key}`: expected a number and a unit, like \"30s\", \"10m\" or \"1h\"",
                    raw.get_ref()
                ),
            )
        })
    }
}

/// Checks that an argv program exists: a path with a `/` relative to the workspace root,
/// or a bare name on `PATH`.
fn check_program(program: &str, root: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('{') {
        return Ok(()); // a placeholder, known only at run time
    }
    if program.contains('/') {
        let path = root.join(program);
        let meta = std::fs::metadata(&path).map_err(|_| {
            format!(
                "program `{program}` does not exist (looked for {})",
                path.display()
            )
        })?;
        if !meta.is_file() {
            return Err(format!("program `{program}` is not a file"));
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "program `{program}` is not executable (run `chmod +x {program}`)"
            ));
        }
        return Ok(());
    }
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(format!("program `{program}` is not on PATH"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    workspace: Option<RawWorkspace>,
    agents: Option<BTreeMap<Spanned<String>, RawAgent>>,
    stages: Option<BTreeMap<Spanned<String>, RawStage>>,
    search: Option<RawSearch>,
    journal: Option<RawJournal>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    segment_size: Option<Spanned<toml::Value>>,
    compress: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    stages: Option<Spanned<Vec<Spanned<String>>>>,
    max_depth: Option<u32>,
    settle_ms: Option<u64>,
    max_children: Option<u32>,
    default_deadline: Option<Spanned<String>>,
    default_budget: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    on: Option<Vec<Spanned<String>>>,
    run: Option<Spanned<toml::Value>>,
    writes: Option<Vec<Spanned<String>>>,
    concurrency: Option<Spanned<u32>>,
    timeout: Option<Spanned<String>>,
    retries: Option<u32>,
    backoff: Option<Spanned<String>>,
    delegates_to: Option<Vec<Spanned<String>>>,
    max_log_bytes: Option<Spanned<toml::Value>>,
    max_output_bytes: Option<Spanned<toml::Value>>,
    max_output_files: Option<Spanned<u64>>,
    sandbox: Option<bool>,
    sandbox_writes: Option<Vec<Spanned<String>>>,
    description: Option<String>,
    fatal_exits: Option<Vec<Spanned<i64>>>,
    expects: Option<Vec<Spanned<String>>>,
    checks: Option<Vec<Spanned<Vec<String>>>>,
    rate: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSearch {
    max_file_size: Option<Spanned<toml::Value>>,
}

/// A size: a whole number of bytes, or a string with a unit (B, KB, MB, GB, KiB, MiB, GiB).
fn parse_size(value: &toml::Value) -> Option<u64> {
    match value {
        toml::Value::Integer(n) if *n > 0 => Some(*n as u64),
        toml::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (number, unit) = s.split_at(split);
            let number: u64 = number.parse().ok()?;
            let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "kb" => 1_000,
                "mb" => 1_000_000,
                "gb" => 1_000_000_000,
                "kib" => 1 << 10,
                "mib" => 1 << 20,
                "gib" => 1 << 30,
                _ => return None,
            };
            number.checked_mul(factor).filter(|n| *n > 0)
        }
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    approval: Option<bool>,
}

/// The workspace's config, for a command (or `baton mcp`): an agent whose program cannot be started
/// now is reported, and the command goes on (only `baton run` refuses it).
pub(crate) fn load_for_command(ws: &Workspace) -> anyhow::Result<Config> {
    let cfg = Config::load(ws)?;
    for agent in cfg.agents.values() {
        if let Some(broken) = &agent.broken {
            let first = broken.to_string();
            let first = first.lines().next().unwrap_or_default();
            eprintln!("baton: warning: {first}; `baton run` refuses to start until it is fixed");
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/"))
    }

    fn first_line(e: ConfigError) -> String {
        e.to_string().lines().next().unwrap().to_string()
    }

    #[test]
    fn defaults() {
        let c = parse("[agents.a]\nrun = \"true\"\n").unwrap();
        assert_eq!(c.stages, DEFAULT_STAGES);
        assert_eq!(c.max_depth, 8);
        assert_eq!(c.settle, Duration::from_millis(20));
        let a = &c.agents["a"];
        assert_eq!(a.concurrency, 1);
        assert_eq!(a.run, Run::Shell("true".into()));
        assert_eq!(a.timeout, Duration::from_secs(600));
    }

    #[test]
    fn unknown_key_has_line_and_column() {
        let e = parse("[agents.a]\nrun = \"true\"\nconcurency = 2\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1));
        assert!(
            e.message.contains("unknown field `concurency`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn bad_duration() {
        let e = parse("[agents.a]\nrun = \"true\"\ntimeout = \"soon\"\n").unwrap_err();
        assert_eq!(
            first_line(e),
            "baton.toml:3:11: agent `a`: bad duration `soon` for `timeout`: expected a number and a unit, like \"30s\", \"10m\" or \"1h\""
        );
    }

    #[test]
    fn zero_timeout() {
        let e = parse("[agents.a]\nrun = \"true\"\ntimeout = \"0s\"\n").unwrap_err();
        assert_eq!(
            first_line(e),
            "baton.toml:3:11: agent `a`: `timeout` must be longer than zero, like \"30s\" or \"10m\""
        );
    }

    #[test]
    fn search_size_limit() {
        let c = parse("[search]\nmax_file_size = \"2MiB\"\n").unwrap();
        assert_eq!(c.max_file_size, 2 << 20);
        assert_eq!(
            parse("[search]\nmax_file_size = 1000\n")
                .unwrap()
                .max_file_size,
            1000
        );
        assert_eq!(parse("").unwrap().max_file_size, 16 << 20);
        let e = parse("[search]\nmax_file_size = \"lots\"\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 17));
    }

    #[test]
    fn glob_outside_stage() {
        let e = parse("[agents.a]\non = [\"drafs/*.md\"]\nrun = \"true\"\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 7));
        assert!(e.message.contains("does not start in a stage"));
    }

    #[test]
    fn writes_missing_stage() {
        let e =
            parse("[agents.a]\nrun = \"true\"\nwrites = [\"drafts\", \"nowhere\"]\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 21));
        assert!(e.message.contains("`nowhere`, which is not a stage"));
    }

    #[test]
    fn a_missing_program_is_found_at_load_and_refused_only_to_run() {
        let c = parse("[agents.a]\nrun = [\"agents/missing.sh\"]\n[agents.b]\nrun = \"true\"\n")
            .unwrap();
        assert!(c.agents["b"].broken.is_none());
        let e = c.check_runnable().unwrap_err();
        assert_eq!((e.line, e.column), (2, 7));
        assert!(e.message.contains("does not exist"));
    }

    #[test]
    fn globs_match_by_folder() {
        let c = parse("[agents.a]\non = [\"briefs/*.md\"]\nrun = \"true\"\n").unwrap();
        let a = &c.agents["a"];
        assert!(a.triggered_by(&RelPath::new("briefs/x.md").unwrap()));
        assert!(!a.triggered_by(&RelPath::new("briefs/sub/x.md").unwrap()));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = parse("[agents.a]\nrun = \"true\"\nbackoff = \"2s\"\n").unwrap();
        let a = &c.agents["a"];
        assert_eq!(a.backoff_for(1), Duration::from_secs(2));
        assert_eq!(a.backoff_for(3), Duration::from_secs(8));
        assert_eq!(a.backoff_for(40), MAX_BACKOFF);
    }
}
