//! `baton who PATH`: the authorship history of one artifact, from the journal.

use std::path::Path;

use anyhow::Result;

use super::Style;
use crate::publish;
use crate::report::who::{as_doc, versions};
use crate::store::Store;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, path: &Path, as_json: bool) -> Result<u8> {
    let rel = ws.rel_from_user(path)?;
    let store = Store::open(ws)?;
    let rows = store.versions_of(&rel, None)?;
    let versions = versions(&store, &rows)?;
    let on_disk = publish::hash_artifact(ws, &rel).ok().map(|(h, _)| h);

    if as_json {
        let doc = as_doc(&rel, &versions, on_disk.as_deref());
        println!("{}", serde_json::to_string_pretty(&doc)?);
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
    for v in &versions {
        let mut line = format!(
            "  {}  {:<12} {}  {} bytes",
            v.ts,
            v.by.as_str(),
            &v.hash[..12.min(v.hash.len())],
            v.size
        );
        if let Some(task) = v.task {
            line.push_str(&format!("  in {task}"));
            if let Some(first) = v.chain.first() {
                line.push_str(&format!(" (on {}", first.input));
                let after: Vec<&str> = v.chain.iter().skip(1).map(|c| c.agent.as_str()).collect();
                if !after.is_empty() {
                    line.push_str(&format!(", after {}", after.join(" ← ")));
                }
                line.push(')');
            }
        }
        println!("{line}");
    }
    match on_disk {
        None => println!("  {}", st.dim("not on disk now")),
        Some(h) if versions.last().is_some_and(|v| v.hash == h) => {}
        Some(h) if versions.iter().any(|v| v.hash == h) => {
            println!("  {}", st.yellow("on disk now: an earlier version"))
        }
        Some(_) => println!(
            "  {}",
            st.yellow("on disk now: a version the journal does not know (edited outside baton)")
        ),
    }
    Ok(0)
}
