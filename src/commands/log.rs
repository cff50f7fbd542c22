//! `baton log [--follow] [--json]`: the activity feed, from the journal.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;

use super::Style;
use super::feed::feed_line;
use crate::journal::{State, Tail};
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, follow: bool, as_json: bool) -> Result<u8> {
    let st = Style::stdout();
    let mut state = State::default();
    let mut tail = Tail::open(ws)?;
    let mut out = std::io::stdout().lock();
    loop {
        if let Some(t) = tail.as_mut() {
            let (entries, _) = t.read_new()?;
            for entry in &entries {
                state.apply(entry);
                if as_json {
                    serde_json::to_writer(&mut out, entry)?;
                    writeln!(out)?;
                } else if let Some(line) = feed_line(&state, entry, st) {
                    writeln!(out, "{line}")?;
                }
            }
        } else if follow {
            tail = Tail::open(ws)?;
        }
        out.flush()?;
        if !follow {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
