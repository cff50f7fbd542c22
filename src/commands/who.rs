//! `baton who PATH`: the authorship history of one artifact, from the journal.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::Style;
use crate::journal::{self, Record, State};
use crate::publish;
use crate::workspace::Workspace;

pub fn run(ws: &Workspace, path: &Path, as_json: bool) -> Result<u8> {
    let rel = ws.rel_from_user(path)?;
    let entries = journal::read_all(ws)?;
    let state = State::replay(&entries);
    let versions: Vec<(&str, &str, u64, &str, Option<&str>)> = entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Artifact {
                path,
                hash,
                size,
                by,
                task,
            } if *path == rel => Some((
                e.ts.as_str(),
                hash.as_str(),
                *size,
                by.as_str(),
                task.as_deref(),
            )),
            _ => None,
        })
        .collect();
    let on_disk = publish::hash_file(&ws.abs(&rel)).ok().map(|(h, _)| h);
    let chain_of = |task: Option<&str>| -> Vec<serde_json::Value> {
        state
            .ancestors(task)
            .map(|t| json!({ "task": t.id, "agent": t.agent, "input": t.input }))
            .collect()
    };

    if as_json {
        let list: Vec<_> = versions
            .iter()
            .map(|(ts, hash, size, by, task)| {
                json!({ "ts": ts, "hash": hash, "size": size, "by": by, "task": task, "chain": chain_of(*task) })
            })
            .collect();
        let current = on_disk
            .as_deref()
            .map(|h| versions.iter().any(|v| v.1 == h));
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "path": rel, "versions": list, "on_disk": on_disk, "on_disk_known": current })
            )?
        );
        return Ok(if versions.is_empty() { 1 } else { 0 });
    }

    if versions.is_empty() {
        if on_disk.is_some() {
            eprintln!(
                "baton: the journal has no record of {rel} yet: it was written outside baton, \
                 and a daemon has not seen it since (one records it as `external` when it does)"
            );
        } else {
            eprintln!("baton: the journal has no record of {rel}, and there is no such file");
        }
        return Ok(1);
    }
    let st = Style::stdout();
    println!("{}", st.bold(rel.as_str()));
    for (ts, hash, size, by, task) in &versions {
        let mut line = format!(
            "  {ts}  {:<12} {}  {size} bytes",
            by,
            &hash[..12.min(hash.len())]
        );
        if let Some(task) = task {
            line.push_str(&format!("  in {task}"));
            let chain = chain_of(Some(task));
            if let Some(input) = chain.first().and_then(|c| c["input"].as_str()) {
                line.push_str(&format!(" (on {input}"));
                let by: Vec<String> = chain
                    .iter()
                    .skip(1)
                    .filter_map(|c| c["agent"].as_str().map(str::to_string))
                    .collect();
                if !by.is_empty() {
                    line.push_str(&format!(", after {}", by.join(" ← ")));
                }
                line.push(')');
            }
        }
        println!("{line}");
    }
    match on_disk {
        None => println!("  {}", st.dim("not on disk now")),
        Some(h) if versions.last().is_some_and(|v| v.1 == h) => {}
        Some(h) if versions.iter().any(|v| v.1 == h) => {
            println!("  {}", st.yellow("on disk now: an earlier version"))
        }
        Some(_) => println!(
            "  {}",
            st.yellow("on disk now: a version the journal does not know (edited outside baton)")
        ),
    }
    Ok(0)
}
