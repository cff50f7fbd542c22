//! One `[agents.NAME]` table: its raw serde shape → a validated [`Agent`].

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source, is_plain_name};
use crate::workspace::RelPath;

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
    /// Who takes the task's input once it is dead (its attempts spent, or a fatal exit),
    /// in order: each a new task on the same input; `human` last holds it escalated.
    pub(crate) fallback: Vec<Fallback>,
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

/// One entry of an agent's `fallback` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fallback {
    /// This agent takes the same input, as a new task.
    Agent(String),
    /// A person: the task waits, escalated, for `baton resolve`, `retry` or `cancel`.
    Human,
}

impl Fallback {
    /// As `baton.toml` spells it.
    pub(crate) fn name(&self) -> &str {
        match self {
            Fallback::Agent(name) => name,
            Fallback::Human => "human",
        }
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

/// An agent's stdout and stderr are each kept up to this per attempt, by default.
const DEFAULT_MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;
/// Per agent, what one attempt may stage (issue 13): enough for any real document
/// team, little enough that a runaway agent cannot fill the disk through a commit.
const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1 << 30;
const DEFAULT_MAX_OUTPUT_FILES: u64 = 10_000;

/// What an agent's settings are checked against.
pub(super) struct Known<'a> {
    pub(super) stages: &'a [String],
    pub(super) agents: &'a [String],
    /// Programs named by relative paths are looked up here.
    pub(super) root: &'a Path,
}

impl Source<'_> {
    pub(super) fn agent(
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
        let fallback = self.fallback(&name, raw.fallback.unwrap_or_default(), known)?;
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
            fallback,
            fatal_exits,
            broken,
        })
    }

    /// The `fallback` list of agent `name`: known agents, other than itself and each
    /// once, and `human` only last (nothing follows a person). Cycles through other
    /// agents' lists are refused by [`Source::fallback_cycles`].
    fn fallback(
        &self,
        name: &str,
        list: Vec<Spanned<String>>,
        known: &Known,
    ) -> Result<Vec<Fallback>, ConfigError> {
        let mut out: Vec<Fallback> = Vec::new();
        for entry in list {
            let text = entry.get_ref().as_str();
            let refuse = |why: String| {
                Err(self.error(entry.span(), format!("agent `{name}`: `fallback` {why}")))
            };
            if out.last() == Some(&Fallback::Human) {
                return refuse(format!(
                    "names `{text}` after `human`: a person is the last resort, put `human` last"
                ));
            }
            let next = match text {
                "human" => Fallback::Human,
                _ if text == name => {
                    return refuse("names the agent itself: its own retries are `retries`".into());
                }
                _ if known.agents.iter().any(|a| a == text) => Fallback::Agent(text.to_string()),
                _ => {
                    return refuse(format!(
                        "names `{text}`, which is not an agent: expected `human` or one of {}",
                        known.agents.join(", ")
                    ));
                }
            };
            if out.contains(&next) {
                return refuse(format!("names `{text}` twice"));
            }
            out.push(next);
        }
        Ok(out)
    }

    /// Refuses a cycle of fallbacks (`a` falls back to `b`, `b` to `a`): `lists` holds
    /// each agent's `fallback` entries as written, for the error's place.
    pub(super) fn fallback_cycles(
        &self,
        lists: &BTreeMap<String, Vec<Spanned<String>>>,
    ) -> Result<(), ConfigError> {
        /// Depth first from `agent`, `path` the agents walked to it; `done`: agents
        /// from which no cycle is reachable.
        fn walk<'a>(
            lists: &'a BTreeMap<String, Vec<Spanned<String>>>,
            agent: &'a str,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<(Vec<&'a str>, &'a Spanned<String>)> {
            for entry in lists.get(agent).into_iter().flatten() {
                let next = entry.get_ref().as_str();
                if let Some(at) = path.iter().position(|a| *a == next) {
                    let mut cycle = path[at..].to_vec();
                    cycle.push(next);
                    return Some((cycle, entry));
                }
                if done.contains(next) {
                    continue;
                }
                path.push(next);
                let found = walk(lists, next, path, done);
                path.pop();
                if found.is_some() {
                    return found;
                }
                done.insert(next);
            }
            None
        }
        let mut done = BTreeSet::new();
        for agent in lists.keys() {
            let mut path = vec![agent.as_str()];
            if let Some((cycle, entry)) = walk(lists, agent, &mut path, &mut done) {
                let from = cycle[cycle.len() - 2];
                return Err(self.error(
                    entry.span(),
                    format!(
                        "agent `{from}`: `fallback` names `{}`, which leads back: fallback cycles \
                         are refused ({})",
                        entry.get_ref(),
                        cycle.join(" → ")
                    ),
                ));
            }
            done.insert(agent.as_str());
        }
        Ok(())
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
pub(super) struct RawAgent {
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
    pub(super) fallback: Option<Vec<Spanned<String>>>,
}
