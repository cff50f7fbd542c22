//! What a writer does to the workspace, whoever asks: `baton write` and `baton delegate`
//! on the command line and the `write_file` and `delegate` tools of `baton mcp` are
//! this module with different front ends, so both keep the same guarantees (scopes,
//! atomic publication under the path lock, stale-write refusal, attribution).
//!
//! Refusals are [`Refused`] errors with a stable [`Code`]: the CLI exits 2 (or 1 for a
//! stale write), the MCP server answers with the code.

use std::io::Read;
use std::path::Path;

use anyhow::Result;

use crate::config::Config;
use crate::error::{Code, refuse, unknown_agent};
use crate::identity::InTask;
use crate::journal::{Attribution, Author, TaskId};
use crate::publish::{self, Published};
use crate::workspace::{RelPath, Workspace};

/// Who acts. Only the daemon's commit attributes what an agent writes inside a task;
/// outside a task a write publishes at once, attributed to the actor.
#[derive(Debug, Clone)]
pub(crate) enum Actor {
    /// A person (`baton write`, `baton mcp` without `--agent`).
    Human,
    /// A configured agent outside any task (`baton mcp --agent NAME`).
    Agent(String),
    /// The agent of the task the environment names (`BATON_TASK`): its writes are
    /// staged and committed only if the task succeeds.
    InTask(InTask),
}

impl Actor {
    /// The actor of the environment: its task inside one, else `agent` if given, else
    /// a person. The agent must be one of `cfg`'s, and inside a task `agent` must be the
    /// task's own: a task cannot act as another agent.
    pub(crate) fn resolve(cfg: &Config, agent: Option<&str>) -> Result<Actor> {
        if let Some(in_task) = InTask::from_env() {
            let own = in_task.agent(cfg)?;
            if let Some(other) = agent.filter(|a| *a != own.name) {
                return Err(refuse(
                    Code::UnknownAgent,
                    format!(
                        "--agent {other}: inside task {} the identity is its agent `{}`; \
                         a task cannot act as another agent",
                        in_task.task, own.name
                    ),
                ));
            }
            in_task.out()?;
            return Ok(Actor::InTask(in_task));
        }
        match agent {
            None => Ok(Actor::Human),
            Some(name) if cfg.agents.contains_key(name) => Ok(Actor::Agent(name.to_string())),
            Some(name) => Err(unknown_agent(cfg, "--agent", name)),
        }
    }

    /// The agent's name, `None` for a person.
    pub(crate) fn agent_name(&self) -> Option<&str> {
        match self {
            Actor::Human => None,
            Actor::Agent(name) => Some(name),
            Actor::InTask(t) => Some(t.agent_name()),
        }
    }

    pub(crate) fn author(&self) -> Author {
        self.agent_name()
            .map_or(Author::Human, |name| Author::Agent(name.to_string()))
    }

    /// The task it acts in, if any.
    pub(crate) fn task(&self) -> Option<&TaskId> {
        match self {
            Actor::InTask(t) => Some(&t.task),
            _ => None,
        }
    }

    /// The attempt's staging tree, inside a task.
    pub(crate) fn out(&self) -> Option<&Path> {
        match self {
            Actor::InTask(t) => t.out().ok(),
            _ => None,
        }
    }

    /// Whether the actor may write `target` (a person may write every stage).
    fn may_write(&self, cfg: &Config, target: &RelPath) -> Result<()> {
        let Some(name) = self.agent_name() else {
            return Ok(());
        };
        let agent = cfg
            .agents
            .get(name)
            .ok_or_else(|| refuse(Code::UnknownAgent, format!("no agent `{name}`")))?;
        if agent.may_write(target) {
            return Ok(());
        }
        Err(refuse(
            Code::OutsideScope,
            format!(
                "{target}: agent `{name}` may not write to stage `{}`; its `writes` in \
                 baton.toml are [{}]",
                target.first(),
                agent.writes.join(", ")
            ),
        ))
    }
}

/// What [`write`] did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Written {
    /// A new version is visible, of `hash`; `replaced` is the one it replaced.
    Published {
        hash: String,
        size: u64,
        replaced: Option<String>,
    },
    /// The path held exactly this content already.
    Unchanged { hash: String },
    /// Staged in the task's `$BATON_OUT`: published when the task succeeds, after a
    /// person's approval where the stage asks for one (`gated`).
    Staged {
        hash: String,
        size: u64,
        gated: bool,
    },
}

/// The version a writer expects to replace: `Some("")` means no file may be there yet.
pub(crate) type Expected<'a> = Option<&'a str>;

/// Whether `target` is a path a writer may write at all: an artifact (a file in a
/// folder of a stage, not a hidden or temporary name) and not a folder.
pub(crate) fn check_artifact(ws: &Workspace, cfg: &Config, target: &RelPath) -> Result<()> {
    if !cfg.is_artifact(target) {
        return Err(refuse(
            Code::NotAnArtifact,
            format!(
                "{target}: not an artifact path; write into a folder of a stage ({}), and not \
                 to a hidden, `*.tmp`, `*~` or `*.swp` name",
                cfg.stages.join(", ")
            ),
        ));
    }
    if ws.abs(target).is_dir() {
        return Err(refuse(Code::IsAFolder, format!("{target} is a folder")));
    }
    Ok(())
}

/// Writes what `content` yields as `target` for `actor`, refused outside its `writes`
/// and, when `expected` is given, unless `target` holds that version now (nothing is
/// written then).
pub(crate) fn write(
    ws: &Workspace,
    cfg: &Config,
    actor: &Actor,
    target: &RelPath,
    content: &mut impl Read,
    expected: Expected,
) -> Result<Written> {
    check_artifact(ws, cfg, target)?;
    actor.may_write(cfg, target)?;
    if let Actor::Agent(name) = actor {
        if cfg.needs_approval(target.first()) {
            // Only a task's outputs can be held for a person; published at once, this
            // would pass the gate.
            return Err(refuse(
                Code::ApprovalRequired,
                format!(
                    "{target}: stage `{}` holds an agent's outputs for a person's approval, \
                     and agent `{name}` writes outside any task here, so nothing could hold \
                     it; write it from inside a task, or as `human`",
                    target.first()
                ),
            ));
        }
    }
    let Actor::InTask(in_task) = actor else {
        let who = Attribution {
            by: actor.author(),
            task: None,
        };
        return match publish::publish_expecting(ws, target, content, who, expected)? {
            Published::New {
                hash,
                size,
                replaced,
            } => Ok(Written::Published {
                hash,
                size,
                replaced,
            }),
            Published::Unchanged { hash } => Ok(Written::Unchanged { hash }),
            Published::Stale { current } => Err(stale(target, expected, current.as_deref())),
        };
    };
    // Inside a task it is staged, and the daemon's commit publishes and attributes it
    // once the task succeeds: a sandboxed agent can write nowhere else.
    let published = publish::hash_artifact(ws, target).ok().map(|(h, _)| h);
    if let Some(expected) = expected {
        // What the task sees: its own staged version if it wrote one, else the
        // published one.
        let staged = in_task.out().ok().and_then(|out| {
            publish::hash_file(&out.join(target.as_str()))
                .ok()
                .map(|(h, _)| h)
        });
        let current = staged.or_else(|| published.clone());
        if current.as_deref().unwrap_or_default() != expected {
            return Err(stale(target, Some(expected), current.as_deref()));
        }
    }
    in_task.note_base(target, published.as_deref())?;
    let mut hashing = publish::Hashing::new(content);
    let size = in_task.stage(target, &mut hashing)?;
    Ok(Written::Staged {
        hash: hashing.finish(),
        size,
        gated: cfg.needs_approval(target.first()),
    })
}

fn stale(target: &RelPath, expected: Expected, current: Option<&str>) -> anyhow::Error {
    let now = match current {
        Some(h) => format!("it holds {h} now"),
        None => "there is no file there now".to_string(),
    };
    let wanted = match expected {
        Some("") | None => "no file".to_string(),
        Some(h) => h.to_string(),
    };
    refuse(
        Code::StaleWrite,
        format!(
            "{target}: expected {wanted}, but {now}; nothing was written. Read it again and \
             write your change on top of what it holds"
        ),
    )
}

/// A delegation as asked.
pub(crate) struct Delegation<'a> {
    pub(crate) to: &'a str,
    /// The path handed over (in the workspace or, inside a task, staged).
    pub(crate) subject: RelPath,
    pub(crate) refs: Vec<RelPath>,
    pub(crate) note: Option<&'a str>,
    /// The same key (from the same actor, to the same agent) names the same brief: a
    /// repeated call returns it instead of writing a second one.
    pub(crate) idempotency_key: Option<&'a str>,
    /// Narrows what the delegate may write for this task (`STAGE` or `STAGE/SUB`).
    pub(crate) writes: &'a [String],
    /// When the delegate must be done (a duration or an RFC 3339 time).
    pub(crate) deadline: Option<&'a str>,
    /// What the delegate and what it delegates may spend.
    pub(crate) budget: Option<f64>,
}

/// What [`delegate`] did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delegated {
    pub(crate) brief: RelPath,
    /// In the task's staging tree: committed (and so dispatched) when it succeeds.
    pub(crate) staged: bool,
    /// An earlier call with the same idempotency key wrote this brief already.
    pub(crate) replayed: bool,
    /// Every path the brief hands over, the subject first.
    pub(crate) refs: Vec<RelPath>,
}

/// Whether `actor` may delegate to `to` (DESIGN §7, `delegates_to`): the daemon refuses
/// a brief outside the list, so the CLI warns and the MCP server refuses.
pub(crate) fn delegation_allowed(cfg: &Config, actor: &Actor, to: &str) -> Result<()> {
    if !cfg.agents.contains_key(to) {
        return Err(unknown_agent(cfg, "to", to));
    }
    let Some(name) = actor.agent_name() else {
        return Ok(());
    };
    let allowed = cfg.agents.get(name).and_then(|a| a.delegates_to.as_ref());
    match allowed {
        Some(list) if !list.iter().any(|a| a == to) => Err(refuse(
            Code::DelegationRefused,
            format!(
                "`{name}` may delegate only to [{}] (delegates_to in baton.toml); the daemon \
                 would refuse a brief to `{to}`",
                list.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether `path` exists in the workspace or in `out` (an output not committed yet).
pub(crate) fn exists(ws: &Workspace, out: Option<&Path>, path: &RelPath) -> bool {
    ws.abs(path).is_file() || out.is_some_and(|o| o.join(path.as_str()).is_file())
}

/// Hands `d.subject` to agent `d.to` by writing a brief that points at it (DESIGN §7):
/// its front matter names the agent and the paths, its body is the note. Inside a task
/// it is staged, with `reply_to`; outside one it is published at once.
pub(crate) fn delegate(
    ws: &Workspace,
    cfg: &Config,
    actor: &Actor,
    d: Delegation,
) -> Result<Delegated> {
    let out = actor.out();
    if let Err(why) = crate::route::narrowing_allowed(cfg, None, d.to, d.writes) {
        return Err(refuse(
            Code::OutsideScope,
            format!("--writes for `{}`: {why}", d.to),
        ));
    }
    if let Some(name) = actor.agent_name() {
        let mine = cfg.agents.get(name);
        for scope in d.writes {
            let inside = RelPath::new(scope).is_ok_and(|p| mine.is_some_and(|a| a.may_write(&p)));
            if !inside {
                return Err(refuse(
                    Code::OutsideScope,
                    format!(
                        "--writes {scope}: outside what `{name}` may write itself [{}]; a \
                         delegation can only narrow authority, never widen it",
                        mine.map(|a| a.writes.join(", ")).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    if let Some(when) = d.deadline {
        crate::deadline::parse(when, std::time::SystemTime::now())
            .map_err(|e| refuse(Code::InvalidArguments, format!("deadline {when:?}: {e}")))?;
    }
    let mut refs = vec![d.subject.clone()];
    for r in d.refs {
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    for r in &refs {
        if !exists(ws, out, r) {
            return Err(refuse(
                Code::NotFound,
                format!(
                    "{r}: no such file in the workspace{}",
                    if out.is_some() {
                        " or in $BATON_OUT"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    let mut front = toml::Table::new();
    front.insert("to".into(), d.to.into());
    front.insert(
        "refs".into(),
        toml::Value::Array(refs.iter().map(|r| r.as_str().into()).collect()),
    );
    if let Some(task) = actor.task() {
        front.insert("reply_to".into(), task.as_str().into());
    }
    if let Some(when) = d.deadline {
        front.insert("deadline".into(), when.into());
    }
    if let Some(budget) = d.budget {
        front.insert("budget".into(), budget.into());
    }
    if !d.writes.is_empty() {
        front.insert(
            "writes".into(),
            toml::Value::Array(d.writes.iter().map(|w| w.as_str().into()).collect()),
        );
    }
    let mut text = format!("+++\n{}+++\n", toml::to_string(&front)?);
    if let Some(note) = d.note {
        text.push_str(note);
        if !note.ends_with('\n') {
            text.push('\n');
        }
    }
    let stem = Path::new(d.subject.as_str())
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("brief");
    // The name is the content's (the same brief twice is one brief), or with a key the
    // key's, scoped to the actor and its task, so a retried call finds its brief.
    let tag = match d.idempotency_key {
        Some(key) => {
            let scope = format!(
                "{}\0{}\0{}\0{key}",
                actor.author(),
                actor.task().map_or("", TaskId::as_str),
                d.to
            );
            blake3::hash(scope.as_bytes()).to_hex()[..8].to_string()
        }
        None => blake3::hash(text.as_bytes()).to_hex()[..8].to_string(),
    };
    let brief = RelPath::new(&format!("{}/{stem}.{}.{tag}.md", cfg.stages[0], d.to))?;
    if let Some(key) = d.idempotency_key {
        let existing = out
            .map(|o| o.join(brief.as_str()))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| ws.abs(&brief));
        if let Ok(before) = std::fs::read(&existing) {
            if before != text.as_bytes() {
                return Err(refuse(
                    Code::IdempotencyConflict,
                    format!(
                        "idempotency key {key:?} was used for another delegation ({brief}); \
                         use a new key for a new delegation"
                    ),
                ));
            }
            return Ok(Delegated {
                brief,
                staged: out.is_some(),
                replayed: true,
                refs,
            });
        }
    }
    match actor {
        Actor::InTask(in_task) => {
            in_task.stage(&brief, &mut text.as_bytes())?;
        }
        _ => {
            let who = Attribution {
                by: actor.author(),
                task: None,
            };
            publish::publish(ws, &brief, &mut text.as_bytes(), who)?;
        }
    }
    Ok(Delegated {
        brief,
        staged: out.is_some(),
        replayed: false,
        refs,
    })
}

/// Where a file named `name` dropped into `stage` (default: the first) lands: a stage of
/// the config, a plain name (no folders), and not one that is never an artifact.
pub(crate) fn drop_target(cfg: &Config, stage: Option<&str>, name: &str) -> Result<RelPath> {
    let stage = match stage {
        Some(s) if cfg.is_stage(s) => s,
        Some(s) => return Err(crate::error::no_such_stage(cfg, s)),
        None => &cfg.stages[0],
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(crate::error::usage!(
            "{name:?}: give a file name, without folders"
        ));
    }
    let target = RelPath::new(&format!("{stage}/{name}"))?;
    if target.is_ignored() {
        return Err(crate::error::usage!(
            "{name}: hidden, `*.tmp`, `*~` and `*.swp` files are never artifacts; rename it first"
        ));
    }
    Ok(target)
}

/// Publishes what a person drops at `target` (`baton drop`, the page's "drop a brief"):
/// `head` (the file's first bytes, with any front matter) then `rest`, attributed to
/// `human`. Refused, saying why and publishing nothing, when the daemon would reject
/// it (bad front matter, bad `refs`, a `to` naming no agent). With it, whether any agent
/// takes it.
pub(crate) fn drop_for_person(
    ws: &Workspace,
    cfg: &Config,
    target: &RelPath,
    head: Vec<u8>,
    rest: impl std::io::Read,
) -> Result<(crate::publish::Published, crate::route::Takers)> {
    let takers =
        crate::route::check_from_person(ws, cfg, target, crate::frontmatter::from_head(&head))
            .map_err(|e| crate::error::usage!("{e}; nothing was dropped"))?;
    let mut content = std::io::Cursor::new(head).chain(rest);
    let published = crate::publish::publish(ws, target, &mut content, Attribution::human())?;
    Ok((published, takers))
}
