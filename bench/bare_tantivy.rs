//! The reference point for `bench/search.sh`: a bare tantivy program indexing the same
//! tree, with no baton in it: one `body` text field (tantivy's default tokenizer, with
//! positions) and a stored `path`, files read in a loop.
//!   cargo run --release --example bare_tantivy -- TREE INDEX_DIR [BUDGET_MB]
use std::time::Instant;

use tantivy::schema::{STORED, STRING, Schema, TEXT};
use tantivy::{Index, TantivyDocument};

fn main() -> tantivy::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (tree, dir) = (&args[1], &args[2]);
    let budget: usize = args
        .get(3)
        .map_or(300, |b| b.parse().expect("budget in MB"));
    let mut builder = Schema::builder();
    let path = builder.add_text_field("path", STRING | STORED);
    let body = builder.add_text_field("body", TEXT);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let index = Index::create_in_dir(dir, builder.build())?;
    let started = Instant::now();
    let mut writer = index.writer(budget * 1_000_000)?;
    let (mut files, mut bytes) = (0u64, 0u64);
    for entry in walkdir::WalkDir::new(tree).into_iter().flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        files += 1;
        bytes += text.len() as u64;
        let mut doc = TantivyDocument::new();
        doc.add_text(path, entry.path().to_string_lossy());
        doc.add_text(body, &text);
        writer.add_document(doc)?;
    }
    writer.commit()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bare tantivy: {files} files, {:.0} MB in {secs:.2} s: {:.1} MB/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
