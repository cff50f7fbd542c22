//! `/events`: the journal as server-sent events, each with `id` = its `seq`. A page
//! that reconnects sends `Last-Event-ID` (or the first connection `?after=SEQ`, the
//! `last_seq` its data was read at) and gets what it missed from the journal, then the
//! live entries, with none twice: the broadcast is subscribed to before the backlog is
//! read, and entries at or below the last one sent are skipped.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::{Stream, StreamExt as _};

use super::{App, Failure, blocking};
use crate::journal::Entry;

/// Entries replayed at most; a page further behind is told to `resync` (reload its data).
const BACKLOG_MAX: usize = 10_000;

#[derive(Deserialize)]
pub(super) struct After {
    after: Option<u64>,
}

pub(super) async fn events(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<After>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Failure> {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = last_id.or(q.after);
    let live = BroadcastStream::new(app.feed.subscribe());
    let (backlog, resync, mut sent) = match after {
        None => (Vec::new(), false, 0),
        Some(seq) => {
            let ws = app.ws.clone();
            match blocking(move || crate::journal::follow::after(&ws, seq, BACKLOG_MAX)).await? {
                Some(entries) => {
                    let sent = entries.last().map_or(seq, |e| e.seq);
                    (entries, false, sent)
                }
                None => (Vec::new(), true, 0),
            }
        }
    };
    let first = resync.then(|| Event::default().event("resync").data("behind"));
    let backlog = backlog.into_iter().map(|e| event(&e));
    let live = live.filter_map(move |item| match item {
        Ok(entry) if entry.seq > sent => {
            sent = entry.seq;
            Some(event(&entry))
        }
        Ok(_) => None,
        Err(BroadcastStreamRecvError::Lagged(n)) => {
            Some(Event::default().event("resync").data(n.to_string()))
        }
    });
    let stream = tokio_stream::iter(first.into_iter().chain(backlog))
        .chain(live)
        .map(Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn event(entry: &Entry) -> Event {
    let data = serde_json::to_string(entry).unwrap_or_default();
    Event::default()
        .event("entry")
        .id(entry.seq.to_string())
        .data(data)
}
