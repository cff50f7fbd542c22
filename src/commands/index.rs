//! `baton index [--rebuild]`: bring the search index up to date with the stages.

use anyhow::Result;

use super::load_config;
use crate::index::store::{Store, from_state};
use crate::journal::{self, State};
use crate::workspace::Workspace;

pub fn run(ws: &Workspace, rebuild: bool) -> Result<u8> {
    let cfg = load_config(ws)?;
    let state = State::replay(&journal::read_all(ws)?);
    let store = Store::open(ws)?;
    if rebuild {
        let mut writer = store.writer()?;
        writer.delete_all_documents()?;
        writer.commit()?;
    }
    let started = std::time::Instant::now();
    let report = store.catch_up(ws, &cfg.stages, &from_state(&state), cfg.max_file_size)?;
    println!(
        "indexed: {} files checked, {} updated, {} removed in {:.2} s",
        report.checked,
        report.updated,
        report.removed,
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}
