//! `baton index [--rebuild]`: bring the search index up to date with the stages,
//! checking every file's size, mtime and content hash, with a progress bar on a terminal.
//! `--rebuild` also rebuilds the state store from the journal.

use std::time::Duration;

use anyhow::Result;

use crate::index::catch_up::Check;
use crate::index::store::Store;
use crate::journal::{Attribution, History};
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, rebuild: bool) -> Result<u8> {
    let cfg = super::common::config(ws)?;
    let history = if rebuild {
        crate::store::Store::rebuild(ws)?
    } else {
        crate::store::Store::open(ws)?
    };
    let store = Store::open(ws)?;
    if rebuild {
        let mut writer = store.writer()?;
        writer.delete_all_documents()?;
        writer.commit()?;
    }
    let started = std::time::Instant::now();
    let who = |path: &_, hash: &str| {
        history
            .attribution_of(path, hash)
            .unwrap_or_else(|_| Attribution::external())
    };
    let report = store.catch_up(
        ws,
        &cfg.stages,
        &who,
        cfg.max_file_size,
        Check::Content,
        Duration::from_millis(300),
    )?;
    println!(
        "indexed: {} files checked, {} updated, {} removed in {:.2} s",
        report.checked,
        report.updated,
        report.removed,
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}
