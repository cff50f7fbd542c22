//! `baton logs TASK [--attempt N]`: an agent run's stdout and stderr.

use anyhow::Result;

use super::Style;
use super::common::find_task;
use crate::error::usage;
use crate::journal::{self, State};
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, task: &str, attempt: Option<u32>) -> Result<u8> {
    let state = State::replay(&journal::read_all(ws)?);
    let task = find_task(&state, task)?;
    if task.attempt == 0 {
        println!("{} has not started yet ({:?})", task.id, task.status);
        return Ok(0);
    }
    let attempt = attempt.unwrap_or(task.attempt);
    let dir = ws.attempt_dir(task.id.as_str(), attempt);
    if !dir.is_dir() {
        return Err(usage!(
            "{} has no attempt {attempt} (attempts: 1..={})",
            task.id,
            task.attempt
        ));
    }
    let st = Style::stdout();
    println!(
        "{}",
        st.bold(&format!(
            "{}  {} on {}  attempt {attempt} of {}  ({})",
            task.id,
            task.agent,
            task.input,
            task.attempt,
            dir.display()
        ))
    );
    for name in ["stdout.log", "stderr.log"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        println!("{}", st.dim(&format!("── {name} ({} bytes)", text.len())));
        print!("{text}");
        if !text.is_empty() && !text.ends_with('\n') {
            println!();
        }
    }
    if let Some(e) = &task.error {
        println!("{}", st.dim(&format!("── error: {e}")));
    }
    Ok(0)
}
