//! `GET /api/JobDispatchLog/Changes/Stream`: the changes feed pushed live as Server-Sent Events.
//!
//! The stream reads the same feed as `/Changes` (so it has the same guarantees: commit order,
//! tombstones, removals for technicians) and sends each change as one event whose `id` is the
//! cursor after it; a client reconnecting with `Last-Event-ID` resumes exactly there. A commit
//! on this instance wakes the stream at once; commits of other instances on the same database
//! are found by reading again every second.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::changes::{bad_escape, decode_cursor};
use super::extract::Caller;
use super::AppState;
use crate::domain::{Principal, Timestamp};
use crate::error::ApiError;
use crate::store::{ChangesPage, Store, StoreError, TenantId};
use crate::wire::cursor::encode_cursor;
use crate::wire::{json, query_value};

/// Changes read per round.
const PAGE: usize = 500;
/// How often the stream looks for changes committed by other instances.
const POLL: Duration = Duration::from_secs(1);

struct Feed {
    store: Arc<dyn Store>,
    caller: Principal,
    cursor: Option<Timestamp>,
    commits: tokio::sync::broadcast::Receiver<TenantId>,
    pending: VecDeque<Event>,
    ended: bool,
}

/// One event per change, in stamp order; the event id is the cursor after it.
fn events_of(page: &ChangesPage) -> Vec<(Timestamp, Event)> {
    let mut events: Vec<(Timestamp, Event)> = page
        .rows
        .iter()
        .map(|row| {
            let mut data = String::with_capacity(600);
            json::write_row(&mut data, row, None);
            (
                row.modified_dateutc,
                Event::default().event("change").data(data),
            )
        })
        .chain(page.removed.iter().map(|(id, stamp)| {
            let data = serde_json::json!({ "id": id }).to_string();
            (*stamp, Event::default().event("removed").data(data))
        }))
        .collect();
    events.sort_by_key(|(stamp, _)| *stamp);
    events
        .into_iter()
        .map(|(stamp, event)| (stamp, event.id(encode_cursor(Some(stamp)))))
        .collect()
}

impl Feed {
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            match self.store.changes(&self.caller, self.cursor, PAGE).await {
                Ok(page) if page.last.is_some() => {
                    self.cursor = page.last;
                    self.pending
                        .extend(events_of(&page).into_iter().map(|(_, e)| e));
                }
                Ok(_) => self.wait_for_commit().await,
                Err(StoreError::CursorPurged) => {
                    self.ended = true;
                    return Some(Event::default().event("resync").data(
                        "The cursor is older than the retention of deleted rows: drop the local copy and resync from scratch.",
                    ));
                }
                Err(e) => {
                    // The database is away: keep the stream open and try again.
                    tracing::warn!(error = %e, "the changes stream cannot read; retrying");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// Waits for a commit of the caller's tenant on this instance, or for the poll interval.
    async fn wait_for_commit(&mut self) {
        let tenant = self.caller.tenant_id;
        let _ = tokio::time::timeout(POLL, async {
            loop {
                match self.commits.recv().await {
                    Ok(t) if t == tenant => return,
                    Ok(_) => {}
                    // Missed notifications: read again rather than wait.
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => {
                        tokio::time::sleep(POLL).await;
                        return;
                    }
                }
            }
        })
        .await;
    }
}

pub async fn stream_job_dispatch_log_changes(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let since = query_value(uri.query(), "since").map_err(bad_escape)?;
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(v.to_str().map(str::to_string).map_err(|_| {
            ApiError::BadRequest(
                "Last-Event-ID must be the id of an event of this stream (a cursor)".into(),
            )
        })?),
    };
    let resume = last_event_id.or(since).filter(|c| !c.trim().is_empty());
    let cursor = match resume {
        Some(c) => decode_cursor(&c)?,
        None => None,
    };
    // Subscribe before the first read, so no commit falls between the two.
    let commits = state.store.subscribe();
    // The first page is read here so that an expired cursor is a plain 410, not a stream.
    let first = state.store.changes(&caller, cursor, PAGE).await?;
    let mut feed = Feed {
        store: state.store.clone(),
        caller,
        cursor: first.last.or(cursor),
        commits,
        pending: VecDeque::new(),
        ended: false,
    };
    feed.pending
        .extend(events_of(&first).into_iter().map(|(_, e)| e));
    let events = stream::unfold(feed, |mut feed| async move {
        feed.next_event().await.map(|e| (Ok(e), feed))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
