//! `baton search QUERY [--stage S] [--author A] [--limit N] [--json] [--lenient]`.
//!
//! With the daemon running the index is kept current by it and this only reads. Without
//! it, the index is first caught up (`Store::catch_up_for_query`).

use std::ops::Range;
use std::path::Path;

use anyhow::Result;

use super::Style;
use crate::error::{no_such_stage, usage};
use crate::index::search::{self, Hit, SearchOptions};
use crate::index::store::Store;

/// `ws` is the `-w` given, if any: an empty query is refused before a workspace is
/// looked for.
pub(crate) fn run(
    ws: Option<&Path>,
    query: &str,
    opts: SearchOptions,
    as_json: bool,
    repeat: usize,
) -> Result<u8> {
    if query.trim().is_empty() {
        return Err(usage!(
            "the query is empty: give the words to look for, or `*` for everything \
             (narrowed with --stage or --author)"
        ));
    }
    let ws = &super::locate(ws)?;
    let cfg = super::common::config(ws)?;
    // Stage filters compare case-insensitively, as the index keeps them.
    if let Some(stage) = &opts.stage {
        if !cfg.stages.iter().any(|s| s.eq_ignore_ascii_case(stage)) {
            return Err(no_such_stage(&cfg, stage));
        }
    }
    let store = Store::open_for_search(ws)?;
    store.catch_up_for_query(ws, &cfg)?;
    let opts = SearchOptions {
        max_file_size: cfg.max_file_size,
        ..opts
    };
    if repeat > 0 {
        let query_only = SearchOptions {
            no_snippets: true,
            ..opts.clone()
        };
        for (what, o) in [("query", &query_only), ("query and snippets", &opts)] {
            let mut times = Vec::with_capacity(repeat);
            for _ in 0..repeat {
                let started = std::time::Instant::now();
                search::search(&store, ws, query, o)?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
            eprintln!(
                "in-process {what}: p50 {:.3} ms, p99 {:.3} ms over {repeat} runs",
                at(0.5),
                at(0.99)
            );
        }
    }
    let hits = search::search(&store, ws, query, &opts)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "query": query, "hits": hits }))?
        );
    } else {
        let st = Style::stdout();
        for hit in &hits {
            print_hit(hit, st);
        }
    }
    Ok(if hits.is_empty() { 1 } else { 0 })
}

fn print_hit(hit: &Hit, st: Style) {
    println!(
        "{}  {}  {}  {}",
        st.bold(&hit.path),
        st.dim(&hit.stage),
        st.cyan(&hit.author),
        st.dim(&format!("{:.2}", hit.score))
    );
    if !hit.snippet.is_empty() {
        println!(
            "    {}",
            highlight(&hit.snippet, &hit.spans, st).replace('\n', " ")
        );
    }
}

/// The snippet with its matches in bold on a terminal, else between `[` and `]`.
pub(crate) fn highlight(snippet: &str, spans: &[Range<usize>], st: Style) -> String {
    let mut out = String::with_capacity(snippet.len() + spans.len() * 8);
    let mut at = 0;
    for span in spans {
        if span.start < at || span.end > snippet.len() {
            continue;
        }
        out.push_str(&snippet[at..span.start]);
        let word = &snippet[span.clone()];
        if st.color {
            out.push_str(&st.bold(word))
        } else {
            out.push_str(&format!("[{word}]"))
        }
        at = span.end;
    }
    out.push_str(&snippet[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_without_colour() {
        let st = Style { color: false };
        assert_eq!(
            highlight("the launch plan", &[Range { start: 4, end: 10 }], st),
            "the [launch] plan"
        );
        assert_eq!(highlight("abc", &[], st), "abc");
    }
}
