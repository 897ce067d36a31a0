//! `GET /api/JobDispatchLog/Changes/Stream`: the changes feed pushed live as Server-Sent Events.
//!
//! The stream reads the same feed as `/Changes` (so it has the same guarantees: commit order,
//! tombstones, removals for technicians) and sends each change as one event whose `id` is the
//! cursor after it; a client reconnecting with `Last-Event-ID` resumes exactly there. It reads
//! only when told of a commit of its tenant: by this instance's writer, or (PostgreSQL) by the
//! listener that hears other instances' `NOTIFY` — an idle stream costs no query.
//!
//! Streams are part of the service's life: at most `--max-streams` are open (503 beyond), they
//! end when the service shuts down, and each checks its caller's credentials again every
//! `--login-recheck`, so a password change, a removed user or a revoked token closes it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::changes::{bad_escape, decode_cursor};
use super::client_addr::ClientAddr;
use super::extract::Caller;
use super::AppState;
use crate::auth::Authenticator;
use crate::domain::{Principal, Timestamp};
use crate::error::ApiError;
use crate::store::{ChangesPage, Store, StoreError, TenantId, EVERY_TENANT};
use crate::wire::cursor::encode_cursor;
use crate::wire::{json, query_value};

/// Changes read per round.
const PAGE: usize = 500;
/// How long a stream waits before reading again while the database is away.
const RETRY: Duration = Duration::from_secs(1);

/// The open streams of this instance: how many may be open, the signal that ends them all,
/// and what `/metrics` reports of them.
pub struct Streams {
    slots: Arc<Semaphore>,
    max: usize,
    closing: watch::Sender<bool>,
    events_sent: AtomicU64,
    /// How often each stream checks its caller's credentials again.
    recheck: Duration,
}

impl Streams {
    pub fn new(max: usize, recheck: Duration) -> Streams {
        Streams {
            slots: Arc::new(Semaphore::new(max.max(1))),
            max: max.max(1),
            closing: watch::channel(false).0,
            events_sent: AtomicU64::new(0),
            recheck: recheck.max(Duration::from_millis(100)),
        }
    }

    /// Ends every open stream (shutdown); no new one opens after it.
    pub fn close(&self) {
        self.closing.send_replace(true);
        self.slots.close();
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Events sent since start.
    pub fn events_sent(&self) -> u64 {
        self.events_sent.load(Ordering::Relaxed)
    }
}

struct Feed {
    store: Arc<dyn Store>,
    caller: Principal,
    cursor: Option<Timestamp>,
    commits: tokio::sync::broadcast::Receiver<TenantId>,
    pending: VecDeque<Event>,
    ended: bool,
    life: Life,
}

/// What ends a stream besides its client: shutdown and credentials that no longer hold.
struct Life {
    streams: Arc<Streams>,
    closing: watch::Receiver<bool>,
    auth: Arc<Authenticator>,
    authorization: Option<String>,
    client: IpAddr,
    next_check: Instant,
    _slot: OwnedSemaphorePermit,
}

impl Life {
    /// False once the service shuts down or the caller's credentials no longer log in.
    async fn still_allowed(&mut self) -> bool {
        if *self.closing.borrow() {
            return false;
        }
        if Instant::now() < self.next_check {
            return true;
        }
        self.next_check = Instant::now() + self.streams.recheck;
        self.auth
            .authenticate(self.authorization.as_deref(), self.client)
            .await
            .is_ok()
    }
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
            if self.ended || !self.life.still_allowed().await {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                self.life
                    .streams
                    .events_sent
                    .fetch_add(1, Ordering::Relaxed);
                return Some(event);
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
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// Waits for a commit of the caller's tenant (or word that commits may have been missed),
    /// for shutdown, or for the next check of the caller's credentials.
    async fn wait_for_commit(&mut self) {
        let tenant = self.caller.tenant_id;
        let commits = &mut self.commits;
        let closing = &mut self.life.closing;
        tokio::select! {
            () = async {
                loop {
                    match commits.recv().await {
                        Ok(t) if t == tenant || t == EVERY_TENANT => return,
                        Ok(_) => {}
                        // Missed notifications: read again rather than wait.
                        Err(RecvError::Lagged(_)) => return,
                        // The store is closing.
                        Err(RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            } => {}
            _ = closing.changed() => {}
            () = tokio::time::sleep_until(self.life.next_check) => {}
        }
    }
}

pub async fn stream_job_dispatch_log_changes(
    State(state): State<AppState>,
    Caller(caller): Caller,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = state
        .streams
        .slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::Busy(format!(
                "This instance has its maximum of {} streams open; retry in a second.",
                state.streams.max
            ))
        })?;
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
    let life = Life {
        streams: state.streams.clone(),
        closing: state.streams.closing.subscribe(),
        auth: state.auth.clone(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        client: client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0 .0),
        next_check: Instant::now() + state.streams.recheck,
        _slot: slot,
    };
    let mut feed = Feed {
        store: state.store.clone(),
        caller,
        cursor: first.last.or(cursor),
        commits,
        pending: VecDeque::new(),
        ended: false,
        life,
    };
    feed.pending
        .extend(events_of(&first).into_iter().map(|(_, e)| e));
    let events = stream::unfold(feed, |mut feed| async move {
        feed.next_event().await.map(|e| (Ok(e), feed))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
