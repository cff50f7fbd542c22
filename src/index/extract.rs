//! PURE: what of an artifact's bytes goes into the index. Text files give a title and a
//! body, with front matter taken out as fields; binary and huge files are indexed by
//! path and metadata only.

use std::borrow::Cow;

use crate::frontmatter;
use crate::workspace::RelPath;

/// How much of a file's start decides whether it is text (DESIGN §8).
pub(crate) const SNIFF_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Extracted<'a> {
    pub(crate) title: String,
    /// `None` for a binary or huge file: indexed by path and metadata only. Borrowed
    /// from the file's bytes (the document copies it once, and once is enough), unless
    /// invalid UTF-8 past the sniffed start had to be replaced.
    pub(crate) body: Option<Cow<'a, str>>,
    /// Front matter keys other than `title`, for the `meta` field.
    pub(crate) meta: toml::Table,
}

/// Whether the start of a file looks like text: no NUL byte and valid UTF-8 (a
/// character cut by the sniff limit is fine).
pub(crate) fn is_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && bytes.len() > SNIFF_BYTES,
    }
}

/// Extracts what to index from `bytes` (the whole file, or nothing if `too_big`).
pub(crate) fn extract<'a>(path: &RelPath, bytes: &'a [u8], too_big: bool) -> Extracted<'a> {
    let by_name = || Extracted {
        title: path.file_name().to_string(),
        body: None,
        meta: toml::Table::new(),
    };
    if too_big {
        return by_name();
    }
    // Usually valid as a whole: one pass decides, and nothing is copied. Otherwise text
    // is what its start says; bad bytes further on become U+FFFD.
    let text: Cow<'a, str> = match std::str::from_utf8(bytes) {
        Ok(text) if !bytes[..bytes.len().min(SNIFF_BYTES)].contains(&0) => Cow::Borrowed(text),
        Ok(_) => return by_name(),
        Err(_) if is_text(bytes) => String::from_utf8_lossy(bytes),
        Err(_) => return by_name(),
    };
    let (title, body, meta) = match frontmatter::parse(&text) {
        Ok((Some(fm), body)) => {
            let mut meta = fm.extra.clone();
            for (key, value) in [("to", fm.to.clone()), ("reply_to", fm.reply_to.clone())] {
                if let Some(v) = value {
                    meta.insert(key.into(), toml::Value::String(v));
                }
            }
            if !fm.refs.is_empty() {
                meta.insert(
                    "refs".into(),
                    toml::Value::Array(fm.refs.iter().cloned().map(toml::Value::String).collect()),
                );
            }
            (fm.title.clone(), body, meta)
        }
        // No front matter, or a malformed one: all of it is body.
        _ => (None, &*text, toml::Table::new()),
    };
    let title = title
        .filter(|t| !t.trim().is_empty())
        .or_else(|| first_heading(body))
        .unwrap_or_else(|| path.file_name().to_string());
    // The body is a part of the text (what follows any front matter).
    let start = body.as_ptr() as usize - text.as_ptr() as usize;
    let part = start..start + body.len();
    let body = match text {
        Cow::Borrowed(text) => Cow::Borrowed(&text[part]),
        Cow::Owned(text) => Cow::Owned(text[part].to_string()),
    };
    Extracted {
        title,
        body: Some(body),
        meta,
    }
}

/// The text of the first Markdown ATX heading (`# Title`, up to `######`).
fn first_heading(body: &str) -> Option<String> {
    let mut fenced = false;
    for line in body.lines() {
        let line = line.trim_start();
        if line.starts_with("```") || line.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with([' ', '\t']) {
            let text = line[hashes..].trim().trim_end_matches('#').trim();
            if !text.is_empty() {
                return Some(text.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    #[test]
    fn title_from_front_matter_then_heading_then_name() {
        let e = extract(
            &p("drafts/a.md"),
            b"+++\ntitle = \"Q3 launch\"\nverdict = \"ok\"\n+++\n# Other\nbody\n",
            false,
        );
        assert_eq!(e.title, "Q3 launch");
        assert_eq!(
            e.body.as_deref(),
            Some("# Other\nbody\n"),
            "front matter is not body noise"
        );
        assert_eq!(e.meta.get("verdict").and_then(|v| v.as_str()), Some("ok"));
        let e = extract(&p("drafts/a.md"), b"intro\n\n## The plan ##\nmore\n", false);
        assert_eq!(e.title, "The plan");
        let e = extract(
            &p("drafts/notes.txt"),
            b"```\n# not a heading\n```\nplain\n",
            false,
        );
        assert_eq!(e.title, "notes.txt");
        assert_eq!(
            extract(&p("drafts/x.md"), b"#hashtag\n", false).title,
            "x.md"
        );
    }

    #[test]
    fn binary_and_huge_files_are_metadata_only() {
        assert_eq!(
            extract(&p("drafts/img.png"), b"\x89PNG\r\n\x1a\n\0\0", false).body,
            None
        );
        assert_eq!(
            extract(&p("drafts/bad.txt"), b"caf\xe9 latin-1", false).body,
            None
        );
        assert_eq!(extract(&p("drafts/big.md"), b"", true).body, None);
        assert_eq!(extract(&p("drafts/big.md"), b"", true).title, "big.md");
    }

    #[test]
    fn a_character_cut_by_the_sniff_limit_is_still_text() {
        let mut bytes = vec![b'a'; SNIFF_BYTES - 1];
        bytes.extend("é and more".as_bytes());
        assert!(is_text(&bytes));
    }

    #[test]
    fn bad_bytes_past_the_sniffed_start_are_replaced_not_the_file_dropped() {
        let mut bytes = b"# Notes\n\n".to_vec();
        bytes.resize(SNIFF_BYTES + 100, b'a');
        bytes.extend(b" caf\xe9 tail words");
        let e = extract(&p("drafts/mixed.md"), &bytes, false);
        assert_eq!(e.title, "Notes");
        let body = e.body.expect("text by its start");
        assert!(
            body.ends_with(" caf\u{fffd} tail words"),
            "{}",
            &body[body.len() - 30..]
        );
        // Bad bytes at the start: binary.
        assert_eq!(extract(&p("drafts/bad.md"), b"caf\xe9", false).body, None);
    }

    #[test]
    fn malformed_front_matter_is_indexed_as_text() {
        let e = extract(&p("briefs/a.md"), b"+++\nto = oops\n+++\n# Brief\n", false);
        assert_eq!(e.title, "Brief");
        assert!(e.body.unwrap().contains("to = oops"));
    }
}
