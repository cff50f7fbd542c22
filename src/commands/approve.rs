//! `baton approve TASK [--note TEXT]` and `baton reject TASK --note TEXT`: decide on a
//! task whose outputs are held for a stage with `approval = true` (DESIGN §7).

use anyhow::Result;

use crate::approval;
use crate::workspace::Workspace;

pub(crate) fn approve(ws: &Workspace, task: &str, note: Option<&str>) -> Result<u8> {
    let task = approval::approve(ws, &super::common::config(ws)?, task, note)?;
    let paths: Vec<&str> = task.outputs.iter().map(|o| o.path.as_str()).collect();
    println!("approved {}: committed {}", task.id, paths.join(", "));
    Ok(0)
}

pub(crate) fn reject(ws: &Workspace, task: &str, note: &str) -> Result<u8> {
    super::common::config(ws)?;
    let task = approval::reject(ws, task, note)?;
    println!(
        "rejected {}: nothing committed; its outputs stay in {}",
        task.id,
        ws.attempt_dir(task.id.as_str(), task.attempt)
            .join("out")
            .display()
    );
    Ok(0)
}
