//! Answering a query: parse it (errors say what broke; a lenient parse is available),
//! filter by stage and author, rank by score, and cut snippets from the file on disk.

use std::ops::Range;

use anyhow::Result;
use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{TantivyDocument, Term};

use super::extract;
use super::store::Store;
use crate::workspace::{RelPath, Workspace};

#[derive(Debug, Clone, Default)]
pub(crate) struct SearchOptions {
    pub(crate) stage: Option<String>,
    pub(crate) author: Option<String>,
    pub(crate) limit: usize,
    /// Parse leniently: drop what does not parse instead of failing.
    pub(crate) lenient: bool,
    /// Files over this get no snippet (they were indexed by name only).
    pub(crate) max_file_size: u64,
    /// Leave snippets out (benchmarks time the query alone).
    pub(crate) no_snippets: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Hit {
    pub(crate) path: String,
    pub(crate) stage: String,
    pub(crate) author: String,
    pub(crate) task: String,
    pub(crate) title: String,
    pub(crate) score: f32,
    pub(crate) snippet: String,
    /// Byte ranges of `snippet` that matched.
    pub(crate) spans: Vec<Range<usize>>,
}

/// A query that does not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "the query does not parse: {message}; check quotes and parentheses, or add --lenient to search for the words as typed"
)]
pub(crate) struct BadQuery {
    pub(crate) message: String,
}

pub(crate) fn search(
    store: &Store,
    ws: &Workspace,
    query: &str,
    opts: &SearchOptions,
) -> Result<Vec<Hit>> {
    let f = &store.schema.fields;
    let mut parser = QueryParser::for_index(&store.index, vec![f.title, f.body]);
    parser.set_conjunction_by_default();
    let parsed: Box<dyn Query> = if opts.lenient {
        parser.parse_query_lenient(query).0
    } else {
        parser.parse_query(query).map_err(|e| BadQuery {
            message: describe(query, &e.to_string()),
        })?
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, parsed.box_clone())];
    for (field, value) in [(f.stage, &opts.stage), (f.author, &opts.author)] {
        if let Some(value) = value {
            let term = Term::from_field_text(field, &value.to_lowercase());
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
    }
    let query = BooleanQuery::new(clauses);
    let reader = store.reader()?;
    let searcher = reader.searcher();
    let top = searcher.search(
        &query,
        &TopDocs::with_limit(opts.limit.max(1)).order_by_score(),
    )?;
    let mut snippets = SnippetGenerator::create(&searcher, &*parsed, f.body)?;
    snippets.set_max_num_chars(160);
    let mut terms = Vec::new();
    parsed.query_terms(&mut |term, _| {
        if term.field() == f.body {
            if let Some(text) = term.value().as_str() {
                terms.push(text.to_string());
            }
        }
    });
    let docs = top
        .into_iter()
        .map(|(score, address)| Ok((score, searcher.doc::<TantivyDocument>(address)?)))
        .collect::<Result<Vec<_>>>()?;
    // The files to cut snippets from, read together (on threads when not cached).
    let bodies = if opts.no_snippets {
        Vec::new()
    } else {
        let paths: Vec<&str> = docs
            .iter()
            .map(|(_, doc)| {
                doc.get_first(f.path)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
            })
            .collect();
        super::fanout::map(&paths, |path| {
            read_for_snippet(ws, path, opts.max_file_size)
        })
    };
    let mut hits = Vec::with_capacity(docs.len());
    for (i, (score, doc)) in docs.into_iter().enumerate() {
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let path = text(f.path);
        let (snippet, spans) = match bodies.get(i) {
            Some(Some((rel, bytes))) => snippet_for(rel, bytes, &snippets, &terms),
            _ => (String::new(), Vec::new()),
        };
        hits.push(Hit {
            stage: text(f.stage),
            author: text(f.author),
            task: text(f.task),
            title: text(f.title),
            score,
            snippet,
            spans,
            path,
        });
    }
    Ok(hits)
}

/// Bodies longer than this are cut to a window around the first match before the
/// snippet generator (which tokenizes and stems all it is given) sees them.
const WINDOW: usize = 4 * 1024;

/// The part of `body` around the earliest occurrence of any of `terms` (stemmed, so
/// looked for as prefixes, ASCII case-insensitively), or all of a short body.
fn window<'a>(body: &'a str, terms: &[String]) -> &'a str {
    if body.len() <= WINDOW {
        return body;
    }
    let lower = body.to_ascii_lowercase(); // same byte offsets as `body`
    let Some(at) = terms.iter().filter_map(|t| lower.find(t.as_str())).min() else {
        return &body[..floor_boundary(body, WINDOW)];
    };
    let start = floor_boundary(body, at.saturating_sub(WINDOW / 4));
    let end = floor_boundary(body, (start + WINDOW).min(body.len()));
    &body[start..end]
}

fn floor_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Where a query that failed to parse breaks: an unclosed quote or parenthesis, or a
/// `)` with no `(`, found by a scan of our own (tantivy's message quotes the whole query
/// for these); otherwise tantivy's own words.
fn describe(query: &str, error: &str) -> String {
    let mut quote: Option<usize> = None;
    let mut open: Vec<usize> = Vec::new();
    for (i, c) in query.chars().enumerate() {
        let column = i + 1;
        match c {
            '"' => quote = if quote.is_some() { None } else { Some(column) },
            '(' if quote.is_none() => open.push(column),
            ')' if quote.is_none() => match open.pop() {
                Some(_) => {}
                None => return format!("the `)` at column {column} closes nothing"),
            },
            _ => {}
        }
    }
    if let Some(column) = quote {
        return format!("the quote at column {column} is never closed");
    }
    if let Some(column) = open.pop() {
        return format!("the `(` at column {column} is never closed");
    }
    error.trim_start_matches("Syntax Error: ").to_string()
}

/// The file at `path` as it is on disk now, to cut a snippet from; `None` when it is
/// gone, or over the size limit (indexed by name only, so no snippet either).
fn read_for_snippet(ws: &Workspace, path: &str, max_size: u64) -> Option<(RelPath, Vec<u8>)> {
    let rel = RelPath::new(path).ok()?;
    let opened = crate::beneath::open(&ws.root, &rel).ok()?;
    if opened.size > max_size {
        return None;
    }
    Some((rel, opened.bytes().ok()?))
}

/// The matching fragment of a file's text, or its opening words.
fn snippet_for(
    rel: &RelPath,
    bytes: &[u8],
    generator: &SnippetGenerator,
    terms: &[String],
) -> (String, Vec<Range<usize>>) {
    let extracted = extract::extract(rel, bytes, false);
    let Some(body) = extracted.body else {
        return (String::new(), Vec::new());
    };
    let snippet = generator.snippet(window(&body, terms));
    if snippet.fragment().is_empty() {
        let opening: String = body
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(160)
            .collect();
        return (opening, Vec::new());
    }
    (
        snippet.fragment().to_string(),
        snippet.highlighted().to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn long_bodies_are_windowed_around_the_first_match() {
        let body = format!("{}needle here{}", "é".repeat(10_000), "x".repeat(20_000));
        let w = super::window(&body, &["needl".to_string()]);
        assert!(w.len() <= super::WINDOW && w.contains("needle here"));
        assert_eq!(super::window("short", &[]), "short");
        assert!(super::window(&body, &["absent".to_string()]).len() <= super::WINDOW);
    }

    #[test]
    fn syntax_errors_name_the_column() {
        assert_eq!(
            describe("launch \"plan", ""),
            "the quote at column 8 is never closed"
        );
        assert_eq!(
            describe("(a OR b", ""),
            "the `(` at column 1 is never closed"
        );
        assert_eq!(describe("a) b", ""), "the `)` at column 2 closes nothing");
        assert_eq!(
            describe("x", "Field does not exist: 'nope'"),
            "Field does not exist: 'nope'"
        );
    }
}
