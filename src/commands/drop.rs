//! `baton drop FILE [--stage S] [--to A]`: publish a file into a stage atomically, by
//! rename, attributed to `human` in the journal. Inside a task it is staged in
//! `$BATON_OUT` instead, and committed with the task's other outputs.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::error::{no_such_stage, unknown_agent, usage};
use crate::frontmatter;
use crate::frontmatter::HEAD_BYTES;
use crate::identity::InTask;
use crate::journal::{History, TaskInfo, TaskStatus};
use crate::pidfile::running_daemon;
use crate::publish::Published;
use crate::route::Takers;
use crate::store::Store;
use crate::workspace::{RelPath, Workspace};

/// Whether `drop` returns at once or once the work it set off is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    No,
    ForTasks,
}

/// What the command line asks of the dropped file: its stage, and the front matter keys
/// to set (`to`, `deadline`, `budget`).
pub(crate) struct Keys<'a> {
    pub(crate) stage: Option<&'a str>,
    pub(crate) to: Option<&'a str>,
    pub(crate) deadline: Option<&'a str>,
    pub(crate) budget: Option<&'a str>,
}

pub(crate) fn run(ws: &Workspace, file: &Path, keys: Keys, wait: Wait) -> Result<u8> {
    let Keys {
        stage,
        to,
        deadline,
        budget,
    } = keys;
    if let Some(when) = deadline {
        crate::deadline::parse(when, std::time::SystemTime::now())
            .map_err(|e| usage!("--deadline {when}: {e}"))?;
    }
    if let Some(n) = budget {
        crate::budget::parse(&toml::Value::String(n.to_string()))
            .map_err(|e| usage!("--budget {n}: {e}"))?;
    }
    let cfg = super::common::config(ws)?;
    // Checked in the order a person fixes them: the stage, the agent, the file.
    if let Some(s) = stage.filter(|s| !cfg.is_stage(s)) {
        return Err(no_such_stage(&cfg, s));
    }
    if let Some(agent) = to.filter(|a| !cfg.agents.contains_key(*a)) {
        return Err(unknown_agent(&cfg, "--to", agent));
    }
    let name = file.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        usage!(
            "{}: not a file name baton can use (UTF-8 expected)",
            file.display()
        )
    })?;
    let target = crate::act::drop_target(&cfg, stage, name)?;
    // A FIFO or device is refused, not waited on; the file is read up to its size now.
    let opened = crate::beneath::open_path(file, true).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => usage!("{e}; only regular files can be dropped"),
        _ => anyhow::Error::from(e).context(format!("reading {}", file.display())),
    })?;
    let mut source = opened.reader();
    // The head, for the checks the daemon makes; the rest is copied as it is read.
    let mut head = Vec::new();
    (&mut source)
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {}", file.display()))?;
    // With `--to`, `--deadline` or `--budget`, the head is rewritten (the front matter is all in it, or the daemon
    // would refuse the file too) and the rest still copied as it is read.
    let mut cut = Vec::new();
    let keys: Vec<(&str, &str)> = [
        to.map(|a| ("to", a)),
        deadline.map(|d| ("deadline", d)),
        budget.map(|b| ("budget", b)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !keys.is_empty() {
        let text = match std::str::from_utf8(&head) {
            Ok(text) => text,
            // A character cut at the head's end is whole again with the rest.
            Err(e) if e.error_len().is_none() => {
                cut = head.split_off(e.valid_up_to());
                std::str::from_utf8(&head).unwrap_or_default()
            }
            Err(_) => {
                return Err(usage!(
                    "--to, --deadline and --budget need a text file; {} is not UTF-8",
                    file.display()
                ));
            }
        };
        head = frontmatter::with_keys(text, &keys)
            .map_err(|e| usage!("{}: {e}", file.display()))?
            .into_bytes();
        head.append(&mut cut);
    }
    if let Some(in_task) = InTask::from_env() {
        let mut content = std::io::Cursor::new(head).chain(source);
        return stage_in_task(&cfg, &in_task, &target, &mut content, wait);
    }
    let (published, takers) = crate::act::drop_for_person(ws, &cfg, &target, head, source)
        .map_err(|e| e.context(format!("{}", file.display())))?;
    let hash = match &published {
        Published::Unchanged { hash } => {
            println!("{target} already holds this content; nothing to do");
            hash.clone()
        }
        Published::New { hash, replaced, .. } => {
            match to {
                Some(agent) => println!("dropped {} → {target} (for {agent})", file.display()),
                None => println!("dropped {} → {target}", file.display()),
            }
            if let Some(old) = replaced {
                println!(
                    "  it replaced another version of {target} ({}), which is kept: \
                     `baton restore {target} --version {}` puts it back",
                    short(old),
                    short(old)
                );
            }
            hash.clone()
        }
        Published::Stale { .. } => unreachable!("no version was expected"),
    };
    if takers == Takers::None {
        eprintln!(
            "baton: warning: no agent's `on` matches {target}, and it names none with `to`: it starts nothing"
        );
        return Ok(0);
    }
    if wait == Wait::ForTasks {
        return wait_for_tasks(ws, &target, &hash);
    }
    Ok(0)
}

/// `drop` inside a task: the file is staged in `$BATON_OUT`, and the daemon's commit
/// publishes it, attributed to the task's agent, once the task succeeds.
fn stage_in_task(
    cfg: &crate::config::Config,
    in_task: &InTask,
    target: &RelPath,
    content: &mut impl Read,
    wait: Wait,
) -> Result<u8> {
    if wait == Wait::ForTasks {
        return Err(usage!(
            "--wait inside a task would wait for this very task: its outputs are \
             published only once it ends"
        ));
    }
    let agent = in_task.agent(cfg)?;
    if !agent.may_write(target) {
        return Err(usage!(
            "{target}: agent `{}` may not write to stage `{}`; its `writes` in baton.toml \
             are [{}]. To hand work to another agent, use `baton delegate --to AGENT PATH`",
            agent.name,
            target.first(),
            agent.writes.join(", ")
        ));
    }
    let n = in_task.stage(target, content)?;
    println!(
        "staged {target} ({n} bytes): it is published when task {} succeeds",
        in_task.task
    );
    Ok(0)
}

/// The first 12 digits of a content hash, as `baton who` and `baton versions` show it.
fn short(hash: &str) -> &str {
    &hash[..12.min(hash.len())]
}

/// A tree of tasks is at rest once nothing about it was journalled for this long: a
/// commit journals a task's end and the tasks its outputs start one after the other.
const AT_REST: Duration = Duration::from_millis(250);

/// Waits for the tasks the version `hash` of `target` set off, and everything they set
/// off in turn, to end (or be held for approval); prints how each ended. 1 if one ended
/// dead, or the version was rejected.
fn wait_for_tasks(ws: &Workspace, target: &RelPath, hash: &str) -> Result<u8> {
    if running_daemon(ws).is_none() {
        eprintln!(
            "baton: no daemon runs on {}: `baton run` (or `baton run --once`) runs what this sets off",
            ws.root.display()
        );
        return Ok(1);
    }
    let mut store = Store::open(ws)?;
    let mut seen = store.stamp()?;
    let mut quiet_since = Instant::now();
    loop {
        store.catch_up(&mut HashMap::new())?;
        let now = store.stamp()?;
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        }
        if let Some(error) = store.rejection(target, hash)? {
            eprintln!("baton: {target} was rejected: {error}");
            return Ok(1);
        }
        let tree = tree_of(&store, target, hash)?;
        let mut at_rest = !tree.is_empty();
        for t in &tree {
            at_rest &= (t.status.is_final()
                || matches!(t.status, TaskStatus::Held | TaskStatus::Escalated))
                && !crate::join::awaits_unqueued_join(&store, t)?;
        }
        if at_rest && quiet_since.elapsed() >= AT_REST {
            return Ok(report(&tree));
        }
        if running_daemon(ws).is_none() {
            eprintln!(
                "baton: the daemon stopped before the work was done; `baton status` shows where it is"
            );
            return Ok(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The tasks queued on version `hash` of `target`, and every task they set off, in the
/// order they were queued.
fn tree_of(store: &Store, target: &RelPath, hash: &str) -> Result<Vec<TaskInfo>> {
    let mut tree: Vec<TaskInfo> = store
        .tasks_touching(target)?
        .into_iter()
        .filter(|t| t.input == *target && t.input_hash == hash)
        .collect();
    let mut i = 0;
    while i < tree.len() && tree.len() < 100_000 {
        for child in store.children(&tree[i].id)? {
            if !tree.iter().any(|t| t.id == child.id) {
                tree.push(child);
            }
        }
        i += 1;
    }
    Ok(tree)
}

/// Prints how each task ended; 1 if one is dead.
fn report(tree: &[TaskInfo]) -> u8 {
    let mut dead = false;
    for t in tree {
        let status = serde_json::to_value(t.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let outputs: Vec<&str> = t.outputs.iter().map(|o| o.path.as_str()).collect();
        let detail = match t.status {
            // Its fallback took its input over: that task's end is what counts.
            TaskStatus::Dead if tree.iter().any(|f| f.fallback_of(&t.id)) => {
                format!(
                    ": {}; its fallback took over",
                    t.error.as_deref().unwrap_or("dead")
                )
            }
            TaskStatus::Dead => {
                dead = true;
                format!(": {}", t.error.as_deref().unwrap_or("dead"))
            }
            TaskStatus::Escalated => {
                dead = true;
                format!(
                    ": {}; escalated: `baton resolve {} --file DEST=SRC`",
                    t.error.as_deref().unwrap_or("dead"),
                    t.id
                )
            }
            TaskStatus::Held => format!(
                " → {} waits for `baton approve {}`",
                outputs.join(", "),
                t.id
            ),
            _ if outputs.is_empty() => String::new(),
            _ => format!(" → {}", outputs.join(", ")),
        };
        println!("  {}  {:<12} {status}{detail}", t.id, t.agent);
    }
    if dead { 1 } else { 0 }
}
