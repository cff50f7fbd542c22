//! Front matter: optional TOML between `+++` lines at the top of a text artifact
//! (DESIGN §7). [`parse`] is pure: text in, fields or an error with line and column
//! out; [`read`] takes it from a file's head.

use std::io::Read as _;
use std::path::Path;

use serde::Deserialize;

/// Front matter sits at the top: this much of a file is read for it.
pub(crate) const HEAD_BYTES: usize = 1 << 20;

/// The fields baton acts on, and the rest kept as metadata.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct FrontMatter {
    /// Route the artifact to this agent only.
    pub(crate) to: Option<String>,
    #[serde(default)]
    pub(crate) refs: Vec<String>,
    pub(crate) reply_to: Option<String>,
    pub(crate) title: Option<String>,
    /// Narrow what the agent it goes to may write for this task (`STAGE` or
    /// `STAGE/SUB`), within its own `writes` and its delegator's.
    pub(crate) writes: Option<Vec<String>>,
    /// When the task it starts must be over: a duration from its arrival ("2h") or an
    /// RFC 3339 time; never later than its delegator's.
    pub(crate) deadline: Option<String>,
    /// What the task it starts and everything beneath it may spend (`cost` units).
    pub(crate) budget: Option<toml::Value>,
    #[serde(flatten)]
    pub(crate) extra: toml::Table,
}

const NO_CLOSING: &str = "the opening `+++` has no closing `+++` line";

/// A front-matter error, with line and column counted in the whole artifact.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("front matter, line {line}, column {column}: {message}")]
pub(crate) struct FrontMatterError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// Splits `text` into its front matter (if any) and the body after it.
pub(crate) fn parse(text: &str) -> Result<(Option<FrontMatter>, &str), FrontMatterError> {
    let Some(rest) = text.strip_prefix("+++").and_then(strip_line_end) else {
        return Ok((None, text));
    };
    let header_len = text.len() - rest.len();
    // The closing fence: a line that is exactly `+++`.
    let mut offset = 0;
    let (toml_text, body) = loop {
        let line_end = rest[offset..]
            .find('\n')
            .map_or(rest.len(), |i| offset + i + 1);
        let line = rest[offset..line_end].trim_end_matches(['\n', '\r']);
        if line == "+++" {
            break (&rest[..offset], &rest[line_end..]);
        }
        if line_end >= rest.len() {
            return Err(FrontMatterError {
                line: 1,
                column: 1,
                message: NO_CLOSING.into(),
            });
        }
        offset = line_end;
    };
    match toml::from_str::<FrontMatter>(toml_text) {
        Ok(fm) => Ok((Some(fm), body)),
        Err(e) => {
            let at = e.span().map_or(0, |s| s.start).min(toml_text.len());
            let before = &text[..header_len + at];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            Err(FrontMatterError {
                line,
                column,
                message: e.message().trim().to_string(),
            })
        }
    }
}

/// The front matter of the text file at `path`; binary files and files without a fence
/// have none, and so does a file that cannot be read.
pub(crate) fn read(path: &Path) -> Result<Option<FrontMatter>, FrontMatterError> {
    let mut head = Vec::new();
    let Ok(opened) = crate::beneath::open_path(path, false) else {
        return Ok(None);
    };
    if opened
        .reader()
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .is_err()
    {
        return Ok(None);
    }
    from_head(&head)
}

/// The front matter of a file whose first bytes (up to [`HEAD_BYTES`]) are `head`.
pub(crate) fn from_head(head: &[u8]) -> Result<Option<FrontMatter>, FrontMatterError> {
    if !head.starts_with(b"+++") {
        return Ok(None);
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
    };
    parse(text).map(|(fm, _)| fm).map_err(|e| {
        if head.len() >= HEAD_BYTES && e.message == NO_CLOSING {
            // The fence may well close, past what is read of a file.
            FrontMatterError {
                message: format!(
                    "front matter too large: no closing `+++` within the first {} MiB",
                    HEAD_BYTES >> 20
                ),
                ..e
            }
        } else {
            e
        }
    })
}

fn strip_line_end(s: &str) -> Option<&str> {
    s.strip_prefix("\r\n").or_else(|| s.strip_prefix('\n'))
}

/// `text` with each `(key, value)` set in its front matter, replacing earlier ones.
pub(crate) fn with_keys(text: &str, keys: &[(&str, &str)]) -> Result<String, FrontMatterError> {
    let (fm, body) = parse(text)?;
    let mut table = match fm {
        None => toml::Table::new(),
        Some(_) => {
            let header = &text[..text.len() - body.len()];
            let inner = header
                .trim_start_matches("+++")
                .trim_end()
                .trim_end_matches("+++");
            inner.parse::<toml::Table>().map_err(|e| FrontMatterError {
                line: 1,
                column: 1,
                message: e.message().to_string(),
            })?
        }
    };
    for (key, value) in keys {
        table.insert((*key).into(), toml::Value::String((*value).into()));
    }
    Ok(format!(
        "+++\n{}+++\n{body}",
        toml::to_string(&table).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_without_fence() {
        assert_eq!(parse("# hi\n").unwrap(), (None, "# hi\n"));
    }

    #[test]
    fn fields_and_extra() {
        let (fm, body) =
            parse("+++\nto = \"legal\"\nrefs = [\"drafts/a.md\"]\npriority = 2\n+++\nBody\n")
                .unwrap();
        let fm = fm.unwrap();
        assert_eq!(fm.to.as_deref(), Some("legal"));
        assert_eq!(fm.refs, vec!["drafts/a.md"]);
        assert_eq!(
            fm.extra.get("priority").and_then(|v| v.as_integer()),
            Some(2)
        );
        assert_eq!(body, "Body\n");
    }

    #[test]
    fn errors_point_into_the_file() {
        let e = parse("+++\ntitle = \"ok\"\nto = legal\n+++\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 6));
        let e = parse("+++\nto = \"x\"\n").unwrap_err();
        assert!(e.message.contains("no closing"));
    }

    #[test]
    fn with_to_adds_or_replaces() {
        let t = with_keys("Body\n", &[("to", "legal")]).unwrap();
        assert_eq!(parse(&t).unwrap().0.unwrap().to.as_deref(), Some("legal"));
        let t = with_keys(
            "+++\nto = \"a\"\ntitle = \"T\"\n+++\nBody\n",
            &[("to", "b")],
        )
        .unwrap();
        let (fm, body) = parse(&t).unwrap();
        let fm = fm.unwrap();
        assert_eq!(
            (fm.to.as_deref(), fm.title.as_deref(), body),
            (Some("b"), Some("T"), "Body\n")
        );
    }

    #[test]
    fn front_matter_past_the_read_limit_is_reported_as_too_large() {
        let mut text = String::from("+++\nnote = \"");
        text.push_str(&"x".repeat(HEAD_BYTES));
        text.push_str("\"\n+++\nbody\n");
        let e = from_head(&text.as_bytes()[..HEAD_BYTES]).unwrap_err();
        assert!(e.message.contains("front matter too large"), "{e}");
        // Short and unclosed is still said as it is.
        let e = from_head(b"+++\nto = \"a\"\n").unwrap_err();
        assert!(e.message.contains("no closing"), "{e}");
    }
}
