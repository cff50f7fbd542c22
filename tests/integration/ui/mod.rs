//! Issue 16, `baton ui`: every HTTP endpoint over a real socket (the token, the Host
//! and Origin checks, each action journalled as `human`, the event stream's resume),
//! and the page in a real browser (`browser.rs`).

mod browser;
mod http;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::*;

/// `baton ui --port 0` on a workspace, and the URL it printed.
pub(crate) struct Ui {
    child: Child,
    pub(crate) port: u16,
    pub(crate) token: String,
}

impl Ui {
    pub(crate) fn start(ws: &TestWorkspace) -> Ui {
        let mut child = ws
            .command(&["ui", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting baton ui");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim();
        let rest = url
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("baton ui printed {url:?}"));
        let (port, token) = rest.split_once("/?token=").unwrap();
        Ui {
            child,
            port: port.parse().unwrap(),
            token: token.to_string(),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/?token={}", self.port, self.token)
    }

    pub(crate) fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A request with the token's cookie (unless `headers` says otherwise).
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut all: Vec<(String, String)> = vec![
            ("Host".into(), format!("127.0.0.1:{}", self.port)),
            ("Cookie".into(), format!("baton_token={}", self.token)),
        ];
        for (k, v) in headers {
            all.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            if !v.is_empty() {
                all.push((k.to_string(), v.to_string()));
            }
        }
        raw(self.port, method, path, &all, body)
    }

    pub(crate) fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], "")
    }

    pub(crate) fn get_json(&self, path: &str) -> Value {
        let reply = self.get(path);
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        reply.json()
    }

    /// A POST from the page: the token and the page's Origin.
    pub(crate) fn post(&self, path: &str, body: Value) -> Reply {
        let origin = self.origin();
        self.request(
            "POST",
            path,
            &[("Origin", &origin), ("Content-Type", "application/json")],
            &body.to_string(),
        )
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection, read to its end.
fn raw(port: u16, method: &str, path: &str, headers: &[(String, String)], body: &str) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The event stream, read as it comes.
pub(crate) struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    /// `/events`, with `Last-Event-ID: last` when given.
    pub(crate) fn open(ui: &Ui, query: &str, last: Option<u64>) -> Events {
        let mut stream = TcpStream::connect(("127.0.0.1", ui.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut head = format!(
            "GET /events{query} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: baton_token={}\r\nAccept: text/event-stream\r\n",
            ui.port, ui.token
        );
        if let Some(id) = last {
            head.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        Events {
            reader: BufReader::new(stream),
        }
    }

    /// The `(event, id, data)` of the events that came within `limit`, until `done`
    /// holds for what came so far.
    pub(crate) fn until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&[(String, u64, String)]) -> bool,
    ) -> Vec<(String, u64, String)> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let (mut event, mut id, mut data) = (String::new(), 0u64, String::new());
        while Instant::now() < deadline && !done(&got) {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => panic!("reading events: {e}"),
            }
            let line = line.trim_end_matches(['\r', '\n']);
            // Chunk sizes of the chunked body come on lines of their own.
            if let Some(v) = line.strip_prefix("event: ") {
                event = v.to_string();
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = v.parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = v.to_string();
            } else if line.is_empty() && !event.is_empty() {
                got.push((std::mem::take(&mut event), id, std::mem::take(&mut data)));
            }
        }
        got
    }
}

/// A workspace with a writer whose drafts wait at an approval gate, and a gate that fails
/// until told: held, failed and dead tasks to act on.
pub(crate) fn team() -> TestWorkspace {
    TestWorkspace::new(
        r#"
[agents.writer]
description = "Drafts each brief"
on = ["briefs/*.md"]
run = ["agents/writer.sh"]
writes = ["published"]
retries = 0

[stages.published]
approval = true
"#,
    )
    .agent(
        "writer",
        r##"set -eu
name=$(basename "$BATON_INPUT")
case "$name" in fail*) echo "cannot write $name" >&2; exit 3 ;; esac
mkdir -p "$BATON_OUT/published"
{ echo "# Draft of $name"; echo; cat "$BATON_INPUT"; } > "$BATON_OUT/published/$name""##,
    )
}

pub(crate) fn task_of(ws: &TestWorkspace, input: &str) -> String {
    ws.records("task.queued")
        .into_iter()
        .find(|q| q["input"] == input)
        .unwrap_or_else(|| panic!("no task on {input}"))["task"]
        .as_str()
        .unwrap()
        .to_string()
}
