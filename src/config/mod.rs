//! `baton.toml`: raw serde types as the user typed them → a validated [`Config`].
//!
//! Every value that can be wrong keeps its span, so each error names the file, line and
//! column and says what was expected (DESIGN §2). Unknown keys are errors.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

mod agent;

pub(crate) use agent::{Agent, Fallback, Rate, Run};
use agent::{Known, RawAgent};

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
        let fallbacks: BTreeMap<String, Vec<Spanned<String>>> = raw_agents
            .iter()
            .map(|(name, a)| {
                (
                    name.get_ref().clone(),
                    a.fallback.clone().unwrap_or_default(),
                )
            })
            .collect();
        let mut agents = BTreeMap::new();
        for (name, raw_agent) in raw_agents {
            let agent = src.agent(name, raw_agent, &known)?;
            agents.insert(agent.name.clone(), agent);
        }
        src.fallback_cycles(&fallbacks)?;
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
        assert_eq!(a.backoff_for(40), agent::MAX_BACKOFF);
    }

    #[test]
    fn fallback_names_agents_or_a_person_last() {
        let two = "[agents.b]\nrun = \"true\"\n[agents.c]\nrun = \"true\"\n";
        let c = parse(&format!(
            "[agents.a]\nrun = \"true\"\nfallback = [\"b\", \"c\", \"human\"]\n{two}"
        ))
        .unwrap();
        assert_eq!(
            c.agents["a"].fallback,
            [
                Fallback::Agent("b".into()),
                Fallback::Agent("c".into()),
                Fallback::Human
            ]
        );
        for (list, says) in [
            (
                "[\"nobody\"]",
                "names `nobody`, which is not an agent: expected `human` or one of a, b, c",
            ),
            ("[\"a\"]", "names the agent itself"),
            ("[\"b\", \"b\"]", "names `b` twice"),
            ("[\"human\", \"b\"]", "names `b` after `human`"),
        ] {
            let e = parse(&format!(
                "[agents.a]\nrun = \"true\"\nfallback = {list}\n{two}"
            ))
            .unwrap_err();
            assert_eq!(e.line, 3, "{list}");
            assert!(e.message.contains(says), "{list}: {}", e.message);
        }
    }

    #[test]
    fn fallback_cycles_are_refused_with_the_cycle_named() {
        let e = parse(
            "[agents.a]\nrun = \"true\"\nfallback = [\"b\"]\n\
             [agents.b]\nrun = \"true\"\nfallback = [\"c\", \"human\"]\n\
             [agents.c]\nrun = \"true\"\nfallback = [\"a\"]\n",
        )
        .unwrap_err();
        assert_eq!(
            first_line(e),
            "baton.toml:9:13: agent `c`: `fallback` names `a`, which leads back: fallback cycles \
             are refused (a → b → c → a)"
        );
        // Two agents falling back to one third is no cycle.
        parse(
            "[agents.a]\nrun = \"true\"\nfallback = [\"c\"]\n\
             [agents.b]\nrun = \"true\"\nfallback = [\"c\", \"a\"]\n\
             [agents.c]\nrun = \"true\"\n",
        )
        .unwrap();
    }
}
