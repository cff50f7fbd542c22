//! `baton demo [DIR]`: the content-factory example, end to end, in a fresh workspace:
//! drop the sample briefs, run the daemon until the work is drained, show the feed and
//! the published files.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::Style;
use super::common::{Embedded, write_workspace};
use super::feed::feed_line;
use crate::daemon::{self, Until};
use crate::journal::{self, Attribution, State, TaskId, TaskStatus};
use crate::workspace::RelPath;
use crate::{approval, publish};

const EXAMPLE: &[Embedded] = &[
    (
        "baton.toml",
        include_bytes!("../../examples/content-factory/baton.toml"),
        false,
    ),
    (
        "agents/outline.sh",
        include_bytes!("../../examples/content-factory/agents/outline.sh"),
        true,
    ),
    (
        "agents/draft.sh",
        include_bytes!("../../examples/content-factory/agents/draft.sh"),
        true,
    ),
    (
        "agents/review.sh",
        include_bytes!("../../examples/content-factory/agents/review.sh"),
        true,
    ),
    (
        "agents/publish.sh",
        include_bytes!("../../examples/content-factory/agents/publish.sh"),
        true,
    ),
    (
        "sample-briefs/launch.md",
        include_bytes!("../../examples/content-factory/sample-briefs/launch.md"),
        false,
    ),
    (
        "sample-briefs/pricing.md",
        include_bytes!("../../examples/content-factory/sample-briefs/pricing.md"),
        false,
    ),
    (
        "sample-briefs/tiny.md",
        include_bytes!("../../examples/content-factory/sample-briefs/tiny.md"),
        false,
    ),
    (
        ".gitignore",
        include_bytes!("../../examples/content-factory/.gitignore"),
        false,
    ),
];

pub(crate) fn run(dir: Option<PathBuf>) -> Result<u8> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("baton-demo-{}", std::process::id())),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} is not empty; give `baton demo` a new folder",
            dir.display()
        );
    }
    let ws = write_workspace(&dir, EXAMPLE)?;
    let st = Style::stdout();
    println!(
        "{} the content-factory example in {}",
        st.bold("baton demo:"),
        ws.root.display()
    );
    println!("  outliner → drafter → reviewer → publisher, each a shell script in agents/\n");

    let mut briefs: Vec<PathBuf> = std::fs::read_dir(ws.root.join("sample-briefs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    briefs.sort();
    let cfg = super::common::config(&ws)?;
    for brief in &briefs {
        let name = brief
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("brief.md");
        let target = RelPath::new(&format!("{}/{name}", cfg.stages[0]))?;
        publish::publish(
            &ws,
            &target,
            &mut std::fs::File::open(brief)?,
            Attribution::human(),
        )?;
        println!("dropped {} → {target}", brief.display());
    }
    daemon::run_in_foreground(&ws, cfg.clone(), Until::Idle)?;
    // The published stage is an approval gate: approve what waits there, as a person
    // would with `baton approve TASK`, then let the daemon finish what that triggers.
    let held: Vec<TaskId> = {
        let state = State::replay(&journal::read_all(&ws)?);
        state
            .order
            .iter()
            .filter(|id| state.tasks[*id].status == TaskStatus::Held)
            .cloned()
            .collect()
    };
    if !held.is_empty() {
        println!(
            "\n{} {} task(s) held at the approval gate on published/; approving them:",
            st.bold("approval:"),
            held.len()
        );
        for id in &held {
            println!("  $ baton approve {id}");
            let task = approval::approve(&ws, &cfg, id.as_str(), Some("approved by baton demo"))?;
            let paths: Vec<&str> = task.outputs.iter().map(|o| o.path.as_str()).collect();
            println!("    approved {id}: committed {}", paths.join(", "));
        }
        daemon::run_in_foreground(&ws, cfg, Until::Idle)?;
    }

    println!("\n{}", st.bold("activity feed (baton log):"));
    let entries = journal::read_all(&ws)?;
    let final_state = State::replay(&entries);
    let count = |s: TaskStatus| final_state.tasks.values().filter(|t| t.status == s).count();
    let (done, dead) = (count(TaskStatus::Done), count(TaskStatus::Dead));
    let mut state = State::default();
    for entry in &entries {
        state.apply(entry);
        if let Some(line) = feed_line(&|t| state.tasks.get(t).map(|t| t.agent.clone()), entry, st) {
            println!("  {line}");
        }
    }
    println!("\n{}", st.bold("published:"));
    let published = ws.root.join("published");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&published)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for f in &files {
        println!("  {}", f.display());
    }
    if files.is_empty() {
        println!("  (nothing)");
    }
    println!("\n{done} done, {dead} dead. Explore it:");
    let root = ws.root.display();
    println!("  baton -w {root} status");
    println!("  baton -w {root} log");
    if let Some(first) = files.first() {
        println!("  baton -w {root} who {}", first.display());
        println!("  baton -w {root} trace {}", first.display());
    }
    Ok(if dead > 0 { 1 } else { 0 })
}
