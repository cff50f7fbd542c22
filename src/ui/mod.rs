//! `baton ui`: the team's work as a local web page (issue 16). It reads the journal and
//! the state store directly (never the CLI), with or without a daemon running, and its
//! buttons do what the CLI commands do, journalled as `human`.
//!
//! It binds 127.0.0.1 only. Every request needs the random token of the URL it prints
//! (then kept in a cookie), and a `Host` of that address (no DNS rebinding); a request
//! that changes anything also needs an `Origin` of that address (no cross-site forms).
//! The assets are embedded; the page needs no network.

mod act;
mod api;
mod events;
mod render;

use std::io::Write as _;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::broadcast;

use crate::error::Code;
use crate::journal::Entry;
use crate::workspace::Workspace;

/// The cookie that carries the token once the page was opened with it.
const COOKIE: &str = "baton_token";

/// What every request handler shares.
#[derive(Clone)]
pub(crate) struct App(Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) ws: Workspace,
    token: String,
    /// `127.0.0.1:PORT` and `localhost:PORT`: the `Host` and `Origin` accepted.
    hosts: [String; 2],
    /// Every new journal entry, as it is written.
    pub(crate) feed: broadcast::Sender<Arc<Entry>>,
    /// The search index, opened at the first search and kept (as `baton mcp` keeps it).
    index: std::sync::Mutex<Option<Arc<crate::index::store::Store>>>,
}

impl Inner {
    /// The search index, opened once.
    pub(crate) fn index(&self) -> Result<Arc<crate::index::store::Store>> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = &*index {
            return Ok(store.clone());
        }
        let store = Arc::new(crate::index::store::Store::open_for_search(&self.ws)?);
        *index = Some(store.clone());
        Ok(store)
    }
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Serves the page until interrupted.
pub(crate) fn run(ws: &Workspace, port: u16, open: bool) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(ws.clone(), port, open))?;
    runtime.shutdown_background();
    Ok(0)
}

async fn serve(ws: Workspace, port: u16, open: bool) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("binding 127.0.0.1:{port} (another program may use it: try --port 0)")
        })?;
    let port = listener.local_addr()?.port();
    let token = new_token()?;
    let app = App(Arc::new(Inner {
        feed: crate::journal::follow::follow(ws.clone(), "ui-feed"),
        ws,
        token: token.clone(),
        hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
        index: std::sync::Mutex::new(None),
    }));
    let url = format!("http://127.0.0.1:{port}/?token={token}");
    // The URL is the one line on stdout, for scripts; the rest goes to stderr.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{url}")?;
    stdout.flush()?;
    drop(stdout);
    eprintln!(
        "baton ui: serving {} on 127.0.0.1:{port}; open the URL above (it holds the access token); Ctrl-C stops",
        app.ws.root.display()
    );
    if open {
        if let Err(e) = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            eprintln!("baton ui: could not open a browser ({e}); open the URL yourself");
        }
    }
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the page")
}

fn router(app: App) -> Router {
    Router::new()
        .route("/", get(api::index))
        .route("/assets/{*path}", get(api::asset))
        .route("/favicon.ico", get(api::icon))
        .route("/api/now", get(api::now))
        .route("/api/feed", get(api::feed))
        .route("/api/task/{id}", get(api::task))
        .route("/api/logs/{id}", get(api::logs))
        .route("/api/artifact", get(api::artifact))
        .route("/api/diff", get(api::diff))
        .route("/api/search", get(api::search))
        .route("/api/approve", post(act::approve))
        .route("/api/reject", post(act::reject))
        .route("/api/retry", post(act::retry))
        .route("/api/cancel", post(act::cancel))
        .route("/api/drop", post(act::drop))
        .route("/events", get(events::events))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Refuses a request without the token or from elsewhere; on one that came with the
/// token in its URL, sets the cookie that carries it from then on.
async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host_ok = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| app.hosts.iter().any(|ok| ok == h));
    if !host_ok {
        return refusal(
            StatusCode::FORBIDDEN,
            "this page answers only at 127.0.0.1 or localhost, as `baton ui` printed",
        );
    }
    let from_query = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_string);
    let given = from_query
        .clone()
        .or_else(|| header_token(headers))
        .or_else(|| cookie_token(headers));
    if !given.is_some_and(|t| same(&t, &app.token)) {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token: open the URL `baton ui` printed, which holds it",
        );
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let origin_ok = headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|o| app.hosts.iter().any(|ok| ok == o));
        if !origin_ok {
            return refusal(
                StatusCode::FORBIDDEN,
                "a request that changes something must come from the page itself (its Origin \
                 is checked)",
            );
        }
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    if from_query.is_some() {
        let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", app.token);
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.insert(header::SET_COOKIE, v);
        }
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-baton-token")?.to_str().ok()?;
    Some(value.trim().to_string())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .map(str::to_string)
}

/// Compares in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// 128 random bits, hex.
fn new_token() -> Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for the access token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A refusal as JSON, with the code the CLI's errors map to.
fn refusal(status: StatusCode, message: &str) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        _ => "forbidden",
    };
    (
        status,
        axum::Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// An operation's failure as the page gets it: the CLI's message and its stable code,
/// with a status that says whose fault it is.
pub(crate) struct Failure(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = crate::error::code_of(&self.0);
        let status = match code {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::StaleWrite | Code::IdempotencyConflict => StatusCode::CONFLICT,
            Code::Internal | Code::DiskFull | Code::Timeout => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({
            "error": { "code": code, "message": format!("{:#}", self.0) }
        });
        (status, axum::Json(body)).into_response()
    }
}

/// Runs file-system work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T, Failure> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(Failure),
        Err(e) => Err(Failure(anyhow::anyhow!("the request's work panicked: {e}"))),
    }
}
