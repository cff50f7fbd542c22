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
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
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
pub enum Run {
    /// Executed directly; `{input}`, `{out}` and `{task}` are substituted per argument.
    Argv(Vec<String>),
    /// Run by `sh -c`; never substituted (file names cannot inject), read `$BATON_INPUT`.
    Shell(String),
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    /// The globs as written, for display.
    pub on: Vec<String>,
    /// The globs compiled: `*` stays within one folder, `**` crosses folders.
    pub on_set: GlobSet,
    pub run: Run,
    pub writes: Vec<String>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    /// `None` means the agent may delegate to any agent.
    pub delegates_to: Option<Vec<String>>,
}

impl Agent {
    pub fn triggered_by(&self, path: &RelPath) -> bool {
        self.on_set.is_match(path.as_str())
    }

    pub fn may_write(&self, path: &RelPath) -> bool {
        self.writes.iter().any(|s| s == path.first())
    }

    /// The delay before retry number `failures` (1-based): `backoff` doubled each time,
    /// capped at five minutes.
    pub fn backoff_for(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Default)]
pub struct StageOptions {
    /// Outputs into this stage wait for `baton approve`.
    pub approval: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub stages: Vec<String>,
    pub max_depth: u32,
    pub settle: Duration,
    pub max_children: u32,
    pub agents: BTreeMap<String, Agent>,
    pub stage_options: HashMap<String, StageOptions>,
    /// Files over this are indexed by path and metadata only (`[search] max_file_size`).
    pub max_file_size: u64,
}

impl Config {
    /// Reads and validates `baton.toml` of `ws`.
    pub fn load(ws: &Workspace) -> Result<Config, ConfigError> {
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
    pub fn parse(text: &str, root: &Path) -> Result<Config, ConfigError> {
        let err = |span: Range<usize>, message: String| spanned_error(text, span, message);
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| err(e.span().unwrap_or(0..0), e.message().trim().to_string()))?;

        let ws = raw.workspace.unwrap_or_default();
        let stages = match ws.stages {
            None => DEFAULT_STAGES.iter().map(|s| s.to_string()).collect(),
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(err(
                        list.span(),
                        "`stages` is empty: expected at least one folder name".into(),
                    ));
                }
                let mut seen = Vec::new();
                for stage in list.get_ref() {
                    let name = stage.get_ref();
                    if !is_plain_name(name) {
                        return Err(err(
                            stage.span(),
                            format!(
                                "stage `{name}` is not a plain folder name: expected letters, digits, `-` or `_`, not starting with `.`"
                            ),
                        ));
                    }
                    if seen.contains(name) {
                        return Err(err(stage.span(), format!("stage `{name}` is listed twice")));
                    }
                    seen.push(name.clone());
                }
                seen
            }
        };
        let settle = Duration::from_millis(ws.settle_ms.unwrap_or(20));
        let max_depth = ws.max_depth.unwrap_or(8);
        let max_children = ws.max_children.unwrap_or(64);

        let mut stage_options = HashMap::new();
        for (name, raw_stage) in raw.stages.unwrap_or_default() {
            if !stages.contains(name.get_ref()) {
                return Err(err(
                    name.span(),
                    format!(
                        "[stages.{}] names no stage: expected one of {}",
                        name.get_ref(),
                        stages.join(", ")
                    ),
                ));
            }
            stage_options.insert(
                name.into_inner(),
                StageOptions {
                    approval: raw_stage.approval.unwrap_or(false),
                },
            );
        }

        let raw_agents = raw.agents.unwrap_or_default();
        let agent_names: Vec<String> = raw_agents.keys().map(|k| k.get_ref().clone()).collect();
        let mut agents = BTreeMap::new();
        for (name, raw_agent) in raw_agents {
            let name_span = name.span();
            let name = name.into_inner();
            if !is_plain_name(&name) || name == "human" || name == "external" {
                return Err(err(
                    name_span,
                    format!(
                        "agent name `{name}` is not allowed: expected letters, digits, `-` or `_`; `human` and `external` are reserved"
                    ),
                ));
            }
            let agent = validate_agent(
                &name,
                name_span,
                raw_agent,
                &stages,
                &agent_names,
                root,
                &err,
            )?;
            agents.insert(name, agent);
        }

        let search = raw.search.unwrap_or_default();
        let max_file_size = match search.max_file_size {
            None => crate::index::store::DEFAULT_MAX_FILE_SIZE,
            Some(value) => parse_size(value.get_ref()).ok_or_else(|| {
                err(
                    value.span(),
                    "`max_file_size` must be a number of bytes or a size like \"16MiB\", \"512KiB\" or \"1GB\"".into(),
                )
            })?,
        };

        Ok(Config {
            stages,
            max_depth,
            settle,
            max_children,
            agents,
            stage_options,
            max_file_size,
        })
    }

    pub fn is_stage(&self, name: &str) -> bool {
        self.stages.iter().any(|s| s == name)
    }

    /// Whether `path` is an artifact: inside a stage and not an ignored name.
    pub fn is_artifact(&self, path: &RelPath) -> bool {
        self.is_stage(path.first()) && path.as_str().contains('/') && !path.is_ignored()
    }

    pub fn needs_approval(&self, stage: &str) -> bool {
        self.stage_options.get(stage).is_some_and(|o| o.approval)
    }
}

const DEFAULT_STAGES: [&str; 4] = ["briefs", "drafts", "reviews", "published"];

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn validate_agent(
    name: &str,
    name_span: Range<usize>,
    raw: RawAgent,
    stages: &[String],
    agent_names: &[String],
    root: &Path,
    err: &dyn Fn(Range<usize>, String) -> ConfigError,
) -> Result<Agent, ConfigError> {
    let mut on = Vec::new();
    let mut set = GlobSetBuilder::new();
    for glob in raw.on.unwrap_or_default() {
        let text = glob.get_ref();
        let first = text.split('/').next().unwrap_or("");
        if !stages.iter().any(|s| s == first) || !text.contains('/') {
            return Err(err(
                glob.span(),
                format!(
                    "agent `{name}`: glob `{text}` does not start in a stage: expected `STAGE/…` with STAGE one of {}",
                    stages.join(", ")
                ),
            ));
        }
        let compiled: Glob = GlobBuilder::new(text)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                err(
                    glob.span(),
                    format!("agent `{name}`: bad glob `{text}`: {}", e.kind()),
                )
            })?;
        set.add(compiled);
        on.push(text.clone());
    }
    let on_set = set
        .build()
        .map_err(|e| err(name_span.clone(), format!("agent `{name}`: {e}")))?;

    let Some(run) = raw.run else {
        return Err(err(
            name_span,
            format!(
                "agent `{name}` has no `run`: expected an argv array like [\"agents/{name}.sh\"] or a shell string"
            ),
        ));
    };
    let run_span = run.span();
    let run = match run.into_inner() {
        toml::Value::String(s) if !s.trim().is_empty() => Run::Shell(s),
        toml::Value::Array(items) if !items.is_empty() => {
            let mut argv = Vec::new();
            for item in items {
                match item {
                    toml::Value::String(s) => argv.push(s),
                    other => {
                        return Err(err(
                            run_span,
                            format!(
                                "agent `{name}`: `run` holds a {}, expected strings only",
                                other.type_str()
                            ),
                        ));
                    }
                }
            }
            argv.first().filter(|p| !p.is_empty()).ok_or_else(|| {
                err(
                    run_span.clone(),
                    format!("agent `{name}`: `run` starts with an empty program"),
                )
            })?;
            check_program(&argv[0], root)
                .map_err(|m| err(run_span.clone(), format!("agent `{name}`: {m}")))?;
            Run::Argv(argv)
        }
        _ => {
            return Err(err(
                run_span,
                format!(
                    "agent `{name}`: `run` must be a non-empty argv array of strings or a shell string"
                ),
            ));
        }
    };

    let mut writes = Vec::new();
    for stage in raw.writes.unwrap_or_default() {
        if !stages.contains(stage.get_ref()) {
            return Err(err(
                stage.span(),
                format!(
                    "agent `{name}`: `writes` names `{}`, which is not a stage: expected one of {}",
                    stage.get_ref(),
                    stages.join(", ")
                ),
            ));
        }
        writes.push(stage.into_inner());
    }

    let concurrency = match raw.concurrency {
        Some(c) if *c.get_ref() == 0 => {
            return Err(err(
                c.span(),
                format!("agent `{name}`: `concurrency` must be at least 1"),
            ));
        }
        Some(c) => c.into_inner() as usize,
        None => 1,
    };
    let timeout_span = raw.timeout.as_ref().map(|t| t.span());
    let timeout = parse_duration(raw.timeout, Duration::from_secs(600), name, "timeout", err)?;
    if timeout.is_zero() {
        return Err(err(
            timeout_span.unwrap_or(name_span),
            format!("agent `{name}`: `timeout` must be longer than zero, like \"30s\" or \"10m\""),
        ));
    }
    let backoff = parse_duration(raw.backoff, Duration::from_secs(2), name, "backoff", err)?;

    let delegates_to = match raw.delegates_to {
        None => None,
        Some(list) => {
            let mut out = Vec::new();
            for target in list {
                if !agent_names.contains(target.get_ref()) {
                    return Err(err(
                        target.span(),
                        format!(
                            "agent `{name}`: `delegates_to` names `{}`, which is not an agent: expected one of {}",
                            target.get_ref(),
                            agent_names.join(", ")
                        ),
                    ));
                }
                out.push(target.into_inner());
            }
            Some(out)
        }
    };

    Ok(Agent {
        name: name.to_string(),
        on,
        on_set,
        run,
        writes,
        concurrency,
        timeout,
        retries: raw.retries.unwrap_or(2),
        backoff,
        delegates_to,
    })
}

fn parse_duration(
    raw: Option<Spanned<String>>,
    default: Duration,
    agent: &str,
    key: &str,
    err: &dyn Fn(Range<usize>, String) -> ConfigError,
) -> Result<Duration, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    humantime::parse_duration(raw.get_ref().trim()).map_err(|_| {
        err(
            raw.span(),
            format!(
                "agent `{agent}`: bad duration `{}` for `{key}`: expected a number and a unit, like \"30s\", \"10m\" or \"1h\"",
                raw.get_ref()
            ),
        )
    })
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

fn spanned_error(text: &str, span: Range<usize>, message: String) -> ConfigError {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    workspace: Option<RawWorkspace>,
    agents: Option<BTreeMap<Spanned<String>, RawAgent>>,
    stages: Option<BTreeMap<Spanned<String>, RawStage>>,
    search: Option<RawSearch>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    stages: Option<Spanned<Vec<Spanned<String>>>>,
    max_depth: Option<u32>,
    settle_ms: Option<u64>,
    max_children: Option<u32>,
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
    fn missing_program() {
        let e = parse("[agents.a]\nrun = [\"agents/missing.sh\"]\n").unwrap_err();
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
