//! The page's buttons: each does what its CLI command does (`approve`, `reject`,
//! `retry`, `cancel`, `drop`), journalled as `human`. The guard has checked the token
//! and the `Origin` before any of them runs.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{App, Failure, blocking};
use crate::error::usage;
use crate::store::Store;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OnTask {
    /// A task id or a unique prefix of one.
    task: String,
    /// Why, for the journal (required to reject).
    note: Option<String>,
}

pub(super) async fn approve(
    State(app): State<App>,
    Json(a): Json<OnTask>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        let cfg = crate::config::Config::load(&app.ws)?;
        let note = a.note.as_deref().filter(|n| !n.trim().is_empty());
        let task = crate::approval::approve(&app.ws, &cfg, &a.task, note)?;
        let paths: Vec<&str> = task.outputs.iter().map(|o| o.path.as_str()).collect();
        Ok(Json(json!({
            "task": task.id,
            "message": format!("approved {}: committed {}", task.id, paths.join(", ")),
        })))
    })
    .await
}

pub(super) async fn reject(
    State(app): State<App>,
    Json(a): Json<OnTask>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        let Some(note) = a.note.as_deref().filter(|n| !n.trim().is_empty()) else {
            return Err(usage!(
                "say why it is rejected: the note is the task's error"
            ));
        };
        let task = crate::approval::reject(&app.ws, &a.task, note)?;
        Ok(Json(json!({
            "task": task.id,
            "message": format!("rejected {}: nothing committed", task.id),
        })))
    })
    .await
}

pub(super) async fn retry(
    State(app): State<App>,
    Json(a): Json<OnTask>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        let found = Store::open(&app.ws)?.find_task(&a.task)?;
        let task = crate::control::retry(&app.ws, found)?;
        Ok(Json(json!({
            "task": task.id,
            "message": format!("queued {} ({} on {}) again", task.id, task.agent, task.input),
        })))
    })
    .await
}

pub(super) async fn cancel(
    State(app): State<App>,
    Json(a): Json<OnTask>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        let found = Store::open(&app.ws)?.find_task(&a.task)?;
        let task = crate::control::cancel(&app.ws, found)?;
        Ok(Json(json!({
            "task": task.id,
            "message": format!("cancelled {} ({} on {})", task.id, task.agent, task.input),
        })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Dropped {
    /// The file's name (no folders): it lands in `stage`.
    name: String,
    content: String,
    /// Default: the first stage.
    stage: Option<String>,
    /// The one agent it is for (front matter `to`).
    to: Option<String>,
}

/// A new brief, as `baton drop` publishes one.
pub(super) async fn drop(
    State(app): State<App>,
    Json(d): Json<Dropped>,
) -> Result<Json<Value>, Failure> {
    blocking(move || {
        let cfg = crate::config::Config::load(&app.ws)?;
        let stage = d.stage.as_deref().filter(|s| !s.is_empty());
        let name = d.name.trim();
        let target = crate::act::drop_target(&cfg, stage, name)?;
        let mut text = d.content;
        if let Some(agent) = d.to.as_deref().filter(|a| !a.is_empty()) {
            if !cfg.agents.contains_key(agent) {
                return Err(crate::error::unknown_agent(&cfg, "to", agent));
            }
            text = crate::frontmatter::with_keys(&text, &[("to", agent)])
                .map_err(|e| usage!("{name}: {e}"))?;
        }
        let (published, takers) =
            crate::act::drop_for_person(&app.ws, &cfg, &target, text.into_bytes(), std::io::empty())?;
        let message = match published {
            crate::publish::Published::Unchanged { .. } => {
                format!("{target} already holds this content; nothing to do")
            }
            _ if takers == crate::route::Takers::None => format!(
                "dropped {target}; no agent's `on` matches it, and it names none with `to`: it starts nothing"
            ),
            _ => format!("dropped {target}"),
        };
        Ok(Json(json!({ "path": target, "message": message })))
    })
    .await
}
