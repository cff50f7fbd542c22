//! PURE: an artifact as the page shows it. Markdown becomes HTML with everything an
//! artifact could smuggle in made harmless: raw HTML is shown as text, and a link or
//! image to anything but a web address, a workspace path or an anchor goes nowhere.
//! (The page's Content-Security-Policy forbids scripts and remote content besides.)

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
use serde_json::{Value, json};

/// `text` (Markdown) as sanitized HTML.
pub(super) fn markdown(text: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// `url` if it is an http(s) or mailto address, an anchor or a relative path; else `#`.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lowered: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme = lowered
        .split_once(':')
        .map(|(s, _)| s)
        .filter(|s| !s.contains('/') && !s.contains('?') && !s.contains('#'));
    match scheme {
        None | Some("http" | "https" | "mailto") => url,
        Some(_) => CowStr::Borrowed("#"),
    }
}

/// The line diff from `old` to `new`: each line with `op` `equal`, `delete` or
/// `insert`.
pub(super) fn diff(old: &str, new: &str) -> Vec<Value> {
    similar::TextDiff::from_lines(old, new)
        .iter_all_changes()
        .map(|change| {
            let op = match change.tag() {
                similar::ChangeTag::Equal => "equal",
                similar::ChangeTag::Delete => "delete",
                similar::ChangeTag::Insert => "insert",
            };
            json!({ "op": op, "text": change.value().trim_end_matches('\n') })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_script_urls_are_made_harmless() {
        let html = markdown(
            "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n\
             [ok](https://example.com) [bad](javascript:alert(1)) [bad2](JAVASCRIPT:alert(1)) \
             [bad3](vbscript:x) ![i](data:image/png;base64,AAAA) [rel](drafts/a.md) [anchor](#x)\n",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        let lowered = html.to_lowercase();
        for bad in ["javascript:", "vbscript:", "data:"] {
            assert!(!lowered.contains(&format!("=\"{bad}")), "{bad} in {html}");
        }
        assert_eq!(html.matches(r##"href="#""##).count(), 3, "{html}");
        assert!(html.contains(r##"src="#""##), "{html}");
        assert!(html.contains(r#"href="https://example.com""#), "{html}");
        assert!(html.contains(r#"href="drafts/a.md""#), "{html}");
        assert!(html.contains(r##"href="#x""##), "{html}");
    }

    #[test]
    fn a_diff_says_which_lines_went_and_came() {
        let lines = diff("a\nb\nc\n", "a\nB\nc\nd\n");
        let ops: Vec<(String, String)> = lines
            .iter()
            .map(|l| {
                (
                    l["op"].as_str().unwrap().into(),
                    l["text"].as_str().unwrap().into(),
                )
            })
            .collect();
        let want = [
            ("equal", "a"),
            ("delete", "b"),
            ("insert", "B"),
            ("equal", "c"),
            ("insert", "d"),
        ];
        assert_eq!(ops, want.map(|(o, t)| (o.to_string(), t.to_string())));
    }
}
