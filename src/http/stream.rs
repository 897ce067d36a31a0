//! `GET /api/JobDispatchLog/Changes/Stream`: the changes feed pushed live as Server-Sent Events.
//!
//! The stream reads the same feed as `/Changes` (so it has the same guarantees: commit order,
//! tombstones, removals for technicians) and sends each change as one event whose `id` is the
//! cursor after it; a client reconnecting with `Last-Event-ID` resumes exactly there. A stream
//! first reads for itself up to the end of the feed; from then on one reader per tenant
//! ([`TenantWatch`]) reads each commit's changes once, when told of it (by this instance's
//! writer, or on PostgreSQL by the listener that hears other instances' `NOTIFY`), and every
//! stream of the tenant takes what its caller may see from that page: an idle stream costs no
//! query, and a commit costs one read however many streams the tenant has open.
//!
//! Streams are part of the service's life: at most `--max-streams` are open (503 beyond), they
//! end when the service shuts down, and their callers' credentials are checked again every
//! `--login-recheck`, so a password change, a removed user or a revoked token closes them. The
//! check is made once per login ([`LoginCheck`]: the same credentials from the same address),
//! not once per stream, and off the streams' own tasks: an idle stream is woken only by its
//! heartbeat.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::stream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::{self, Receiver};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

use super::changes::{bad_escape, decode_cursor};
use super::client_addr::ClientAddr;
use super::extract::Caller;
use super::AppState;
use crate::auth::Authenticator;
use crate::domain::{JobDispatchLog, Principal, Timestamp};
use crate::error::ApiError;
use crate::store::{ChangesPage, Store, StoreError, TenantChanges, TenantId, EVERY_TENANT};
use crate::wire::cursor::encode_cursor;
use crate::wire::{json, query_value};

/// Changes read per round.
const PAGE: usize = 500;
/// A tenant's reader reads at most this often: the commits of a busy tenant (hundreds a
/// second under load) reach its streams in batches, one write per stream per batch, instead of
/// one wake-up and one write per commit for every stream concerned (with 2,000 streams open
/// those took a third of the Save throughput). A commit after a quiet spell is read at once.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// How long a stream waits before reading again while the database is away.
const RETRY: Duration = Duration::from_secs(1);
/// A stream with nothing to send sends a comment this often, so that proxies keep it open and
/// a client that stopped reading is found out (`--write-timeout`).
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The open streams of this instance: how many may be open, the signal that ends them all,
/// and what `/metrics` reports of them.
pub struct Streams {
    /// Per open stream: the stamp (ticks) of the oldest change it holds but has not yet sent,
    /// 0 when it holds none; for the sync lag of `/metrics`.
    undelivered: Mutex<Vec<Weak<AtomicI64>>>,
    /// One reader per tenant with open streams, shared by them.
    watches: Mutex<HashMap<TenantId, Weak<TenantWatch>>>,
    /// One credentials check per login with open streams, shared by them.
    logins: Mutex<HashMap<Login, Weak<LoginCheck>>>,
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
            undelivered: Mutex::new(Vec::new()),
            watches: Mutex::new(HashMap::new()),
            logins: Mutex::new(HashMap::new()),
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

    /// The age of the oldest change a connected stream holds but has not sent yet (zero when
    /// every stream is up to date): how far live delivery is behind.
    pub fn sync_lag(&self) -> Duration {
        let mut undelivered = self.undelivered.lock().unwrap_or_else(|e| e.into_inner());
        undelivered.retain(|w| w.strong_count() > 0);
        let oldest = undelivered
            .iter()
            .filter_map(Weak::upgrade)
            .map(|t| t.load(Ordering::Relaxed))
            .filter(|t| *t != 0)
            .min();
        oldest.map_or(Duration::ZERO, |ticks| {
            let age = Timestamp::now().ticks().saturating_sub(ticks).max(0);
            Duration::from_nanos(age as u64 * 100)
        })
    }

    fn track(&self) -> Arc<AtomicI64> {
        let slot = Arc::new(AtomicI64::new(0));
        self.undelivered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&slot));
        slot
    }

    /// The tenant's shared reader, started from its last committed stamp when it has none
    /// yet, and a place in what it reads. Taken before a stream's own first reads: those cover
    /// every change the reader had read before, and the place every change it reads after.
    async fn watch(
        &self,
        store: &Arc<dyn Store>,
        caller: &Principal,
    ) -> Result<(Arc<TenantWatch>, Receiver<Arc<SharedPage>>), StoreError> {
        let tenant = caller.tenant_id;
        if let Some(watch) = self.existing_watch(tenant) {
            let batches = watch.subscribe(caller);
            return Ok((watch, batches));
        }
        // Stamps follow commit order: every change at or below this one is already visible to
        // the stream's own reads, and every later one will be stamped above it.
        let start = store.tenant_last_stamp(tenant).await?;
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(watch) = watches.get(&tenant).and_then(Weak::upgrade) {
            let batches = watch.subscribe(caller);
            return Ok((watch, batches));
        }
        watches.retain(|_, w| w.strong_count() > 0);
        let watch = Arc::new(TenantWatch {
            every_row: broadcast::channel(WATCH_BUFFER).0,
            technicians: Mutex::new(HashMap::new()),
        });
        let receiver = watch.subscribe(caller);
        watches.insert(tenant, Arc::downgrade(&watch));
        tokio::spawn(read_for_tenant(
            Arc::downgrade(&watch),
            store.clone(),
            tenant,
            start,
            self.closing.subscribe(),
        ));
        Ok((watch, receiver))
    }

    /// The check of a login's credentials, started when the login has none running (or its
    /// last one found them revoked).
    fn login_check(
        &self,
        auth: &Arc<Authenticator>,
        authorization: Option<String>,
        client: IpAddr,
    ) -> Arc<LoginCheck> {
        let key = (authorization, client);
        let mut logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(check) = logins.get(&key).and_then(Weak::upgrade) {
            if !*check.revoked.borrow() {
                return check;
            }
        }
        logins.retain(|_, c| c.strong_count() > 0);
        let (revoked, receiver) = watch::channel(false);
        let check = Arc::new(LoginCheck { revoked: receiver });
        logins.insert(key.clone(), Arc::downgrade(&check));
        tokio::spawn(check_login(
            Arc::downgrade(&check),
            revoked,
            auth.clone(),
            key,
            self.recheck,
            self.closing.subscribe(),
        ));
        check
    }

    fn existing_watch(&self, tenant: TenantId) -> Option<Arc<TenantWatch>> {
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant)
            .and_then(Weak::upgrade)
    }
}

/// A login: the `Authorization` a stream was opened with, and its client's address.
type Login = (Option<String>, IpAddr);

/// Whether a login's credentials still hold, checked every `--login-recheck` for every stream
/// of the login on this instance; it lives as long as one of them does.
struct LoginCheck {
    /// Becomes true when the credentials stop working.
    revoked: watch::Receiver<bool>,
}

/// Checks a login's credentials again every `every` until they fail (then tells its streams),
/// the last of its streams ends, or the service shuts down.
async fn check_login(
    check: Weak<LoginCheck>,
    revoked: watch::Sender<bool>,
    auth: Arc<Authenticator>,
    (authorization, client): Login,
    every: Duration,
    mut closing: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = closing.changed() => return,
        }
        if check.strong_count() == 0 {
            return;
        }
        if auth
            .authenticate(authorization.as_deref(), client)
            .await
            .is_err()
        {
            revoked.send_replace(true);
            return;
        }
    }
}

/// Pages of a tenant's changes read once and shared by every stream of the tenant on this
/// instance; it lives as long as one of them does. A page goes to the streams that see every
/// row, and to the streams of each technician it holds a change of: a technician's stream
/// is not woken by the pages of others (with 2,000 streams open, waking each for every page
/// halved Save throughput).
struct TenantWatch {
    every_row: broadcast::Sender<Arc<SharedPage>>,
    /// Per technician (`user_id`) with open streams.
    technicians: Mutex<HashMap<Uuid, broadcast::Sender<Arc<SharedPage>>>>,
}

impl TenantWatch {
    /// A place in the pages the caller may see something of.
    fn subscribe(&self, caller: &Principal) -> Receiver<Arc<SharedPage>> {
        if !caller.is_technician() {
            return self.every_row.subscribe();
        }
        self.technicians
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(caller.user_id)
            .or_insert_with(|| broadcast::channel(WATCH_BUFFER).0)
            .subscribe()
    }

    /// Hands a page to the streams that may see something of it.
    fn publish(&self, page: SharedPage) {
        let page = Arc::new(page);
        if self.every_row.receiver_count() > 0 {
            let _ = self.every_row.send(page.clone());
        }
        let mut technicians = self.technicians.lock().unwrap_or_else(|e| e.into_inner());
        if technicians.is_empty() {
            return;
        }
        let concerned = page.changes.rows.iter().map(|r| r.user_id);
        let concerned = concerned.chain(page.changes.exits.iter().map(|(_, from, _)| *from));
        let mut sent = HashSet::new();
        for user in concerned {
            if !sent.insert(user) {
                continue;
            }
            let gone = technicians
                .get(&user)
                .is_some_and(|streams| streams.send(page.clone()).is_err());
            if gone {
                // The technician's last stream has ended.
                technicians.remove(&user);
            }
        }
    }
}

/// A page of a tenant's changes with the `change` event of each row, written once for every
/// stream that sends it.
struct SharedPage {
    changes: TenantChanges,
    /// The event of each of `changes.rows`, in the same order.
    events: Vec<Bytes>,
    /// All of `events` in one piece, made by the first stream that sends the whole page (a
    /// stream that sees every row): every such stream then hands the same bytes to its
    /// connection instead of copying the page's events into a piece of its own.
    whole: std::sync::OnceLock<Bytes>,
}

impl SharedPage {
    fn whole(&self) -> Bytes {
        self.whole
            .get_or_init(|| joined(self.events.iter().cloned()))
            .clone()
    }
}

/// Pieces of text as one: the piece itself, uncopied, when there is only one.
fn joined(pieces: impl IntoIterator<Item = Bytes>) -> Bytes {
    let mut pieces = pieces.into_iter();
    let Some(first) = pieces.next() else {
        return Bytes::new();
    };
    let Some(second) = pieces.next() else {
        return first;
    };
    let mut text = Vec::with_capacity(first.len() + second.len());
    text.extend_from_slice(&first);
    text.extend_from_slice(&second);
    for piece in pieces {
        text.extend_from_slice(&piece);
    }
    Bytes::from(text)
}

/// Pages a tenant's reader keeps for streams that have not yet sent them. A stream that falls
/// further behind (its client does not read) is ended; it resumes with `Last-Event-ID`.
const WATCH_BUFFER: usize = 64;

/// Reads the tenant's new changes whenever one of its commits is announced (or commits may
/// have been missed) and hands each page to the tenant's streams; ends with the last stream or
/// at shutdown.
async fn read_for_tenant(
    watch: Weak<TenantWatch>,
    store: Arc<dyn Store>,
    tenant: TenantId,
    mut cursor: Timestamp,
    mut closing: watch::Receiver<bool>,
) {
    let mut commits = store.subscribe();
    let mut last_read: Option<Instant> = None;
    loop {
        if let Some(last) = last_read {
            // Commits announced within the window are read together, once it has passed.
            let due = last + BATCH_WINDOW;
            if Instant::now() < due {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    _ = closing.changed() => return,
                }
            }
            // What was announced until now is in the read that follows.
            while !matches!(
                commits.try_recv(),
                Err(TryRecvError::Empty | TryRecvError::Closed)
            ) {}
        }
        last_read = Some(Instant::now());
        loop {
            let Some(current) = watch.upgrade() else {
                return;
            };
            match store.tenant_changes(tenant, cursor, PAGE).await {
                Ok(page) => {
                    let Some(last) = page.last else { break };
                    cursor = last;
                    let more = page.has_more;
                    let events = page.rows.iter().map(change_event).collect();
                    current.publish(SharedPage {
                        changes: page,
                        events,
                        whole: std::sync::OnceLock::new(),
                    });
                    if !more {
                        break;
                    }
                }
                Err(e) => {
                    // The database is away (or the position was purged meanwhile, which needs
                    // an operator's purge shorter than a read): try again.
                    tracing::warn!(error = %e, tenant, "the changes stream cannot read; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
        tokio::select! {
            () = async {
                loop {
                    match commits.recv().await {
                        Ok(t) if t == tenant || t == EVERY_TENANT => return,
                        Ok(_) => {}
                        // Missed announcements: read rather than wait.
                        Err(RecvError::Lagged(_)) => return,
                        Err(RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            } => {}
            _ = closing.changed() => return,
        }
    }
}

struct Feed {
    store: Arc<dyn Store>,
    caller: Principal,
    cursor: Option<Timestamp>,
    /// Until the stream's own reads reach the end of the feed, it reads for itself; then it
    /// takes its changes from the tenant's shared reader.
    caught_up: bool,
    batches: Receiver<Arc<SharedPage>>,
    _watch: Arc<TenantWatch>,
    /// The stamps of `pending`'s events, oldest first, for the sync lag.
    pending_stamps: VecDeque<Timestamp>,
    oldest_undelivered: Arc<AtomicI64>,
    /// Events not yet sent, as their text: one event a piece, or a whole shared page.
    pending: VecDeque<Bytes>,
    /// When the next heartbeat is due; kept from one wake-up to the next (a new timer at every
    /// wake-up cost the timer wheel as much again).
    heartbeat: Pin<Box<tokio::time::Sleep>>,
    /// Resolves when the service shuts down or the caller's credentials stop working (or their
    /// check ends without a verdict). Made once for the stream's life: made anew at every
    /// wake-up, it registered with and left the shutdown signal that every stream shares, which
    /// with 10,000 idle streams was most of the heartbeats' cost.
    life_ends: Pin<Box<dyn Future<Output = ()> + Send>>,
    ended: bool,
    life: Life,
}

/// What ends a stream besides its client: shutdown and credentials that no longer hold.
struct Life {
    streams: Arc<Streams>,
    closing: watch::Receiver<bool>,
    revoked: watch::Receiver<bool>,
    _login: Arc<LoginCheck>,
    _slot: OwnedSemaphorePermit,
}

impl Life {
    /// False once the service shuts down or the caller's credentials no longer log in.
    fn still_allowed(&self) -> bool {
        !*self.closing.borrow() && !*self.revoked.borrow()
    }
}

/// Resolves once `closing` or `revoked` changes (both only ever become true) or the check
/// behind `revoked` ends.
async fn life_ends(mut closing: watch::Receiver<bool>, mut revoked: watch::Receiver<bool>) {
    tokio::select! {
        _ = closing.changed() => {}
        _ = revoked.changed() => {}
    }
}

/// An event's text (`data` of one line, as every event here has).
fn sse_event(kind: &str, data: &str, id: Option<Timestamp>) -> Bytes {
    let mut text = String::with_capacity(data.len() + 64);
    text.push_str("event: ");
    text.push_str(kind);
    text.push_str("\ndata: ");
    text.push_str(data);
    text.push('\n');
    if let Some(stamp) = id {
        text.push_str("id: ");
        text.push_str(&encode_cursor(Some(stamp)));
        text.push('\n');
    }
    text.push('\n');
    Bytes::from(text)
}

/// The event of a changed row (or its tombstone); its id is the cursor after it.
fn change_event(row: &JobDispatchLog) -> Bytes {
    let mut data = String::with_capacity(600);
    json::write_row(&mut data, row, None);
    sse_event("change", &data, Some(row.modified_dateutc))
}

/// The event of a row reassigned away from a technician.
fn removed_event(id: Uuid, stamp: Timestamp) -> Bytes {
    let data = serde_json::json!({ "id": id }).to_string();
    sse_event("removed", &data, Some(stamp))
}

/// One event per change, in stamp order.
fn events_of(page: &ChangesPage) -> Vec<(Timestamp, Bytes)> {
    let mut events: Vec<(Timestamp, Bytes)> = page
        .rows
        .iter()
        .map(|row| (row.modified_dateutc, change_event(row)))
        .chain(
            page.removed
                .iter()
                .map(|(id, stamp)| (*stamp, removed_event(*id, *stamp))),
        )
        .collect();
    events.sort_by_key(|(stamp, _)| *stamp);
    events
}

impl Feed {
    /// The next piece of the stream: every event waiting, in one piece (one write for the
    /// connection however many there are), or a heartbeat; None when the stream ends.
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if self.ended || !self.life.still_allowed() {
                return None;
            }
            if !self.pending.is_empty() {
                // A piece may hold many events (a whole shared page): one stamp each.
                let sent = self.pending_stamps.len();
                let frame = joined(self.pending.drain(..));
                self.pending_stamps.clear();
                self.oldest_undelivered.store(0, Ordering::Relaxed);
                self.life
                    .streams
                    .events_sent
                    .fetch_add(sent as u64, Ordering::Relaxed);
                self.heartbeat_from_now();
                return Some(frame);
            }
            if self.caught_up {
                if self.wait_for_changes().await {
                    self.heartbeat_from_now();
                    return Some(Bytes::from_static(b":\n\n"));
                }
                continue;
            }
            match self.store.changes(&self.caller, self.cursor, PAGE).await {
                Ok(page) if page.last.is_some() => {
                    self.cursor = page.last;
                    self.push(events_of(&page));
                }
                Ok(_) => self.caught_up = true,
                Err(StoreError::CursorPurged) => {
                    self.ended = true;
                    return Some(sse_event(
                        "resync",
                        "The cursor is older than the retention of deleted rows: drop the local copy and resync from scratch.",
                        None,
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

    /// Waits for a page of the tenant's reader, for shutdown, for the caller's credentials to
    /// stop working, or for the next heartbeat (true); a page becomes the events of what the
    /// caller may see.
    async fn wait_for_changes(&mut self) -> bool {
        let received = tokio::select! {
            received = self.batches.recv() => received,
            () = &mut self.life_ends => {
                // Shutdown or credentials that no longer hold (or a check that ended without
                // a verdict, which it cannot short of a failure: rather than keep the stream
                // unchecked, it ends; it resumes).
                self.ended = true;
                return false;
            }
            () = &mut self.heartbeat => return true,
        };
        match received {
            Ok(page) => {
                if !self.push_whole(&page) {
                    let events = self.events_in(&page);
                    self.push(events);
                }
                if let Some(last) = page.changes.last {
                    self.cursor = self.cursor.max(Some(last));
                }
            }
            // The client does not read fast enough to keep within the reader's buffer: end
            // the stream; it resumes after its last event.
            Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => self.ended = true,
        }
        false
    }

    fn heartbeat_from_now(&mut self) {
        self.heartbeat.as_mut().reset(Instant::now() + HEARTBEAT);
    }

    /// The events of a shared page that this stream has not sent and its caller may see:
    /// a technician's own rows, and the removals of rows reassigned away from them (as the
    /// changes feed gives them).
    fn push(&mut self, events: Vec<(Timestamp, Bytes)>) {
        for (stamp, event) in events {
            self.pending_stamps.push_back(stamp);
            self.pending.push_back(event);
        }
        self.note_oldest();
    }

    /// Publishes the stamp of the oldest event waiting, for the sync lag.
    fn note_oldest(&mut self) {
        let oldest = self.pending_stamps.front().map_or(0, |t| t.ticks());
        self.oldest_undelivered.store(oldest, Ordering::Relaxed);
    }

    /// A stream that sees every row and has sent none of the page's sends all of its rows
    /// (they come in stamp order; removals are only technicians' business), as the page's one
    /// shared piece. False when that is not this stream's case.
    fn push_whole(&mut self, page: &SharedPage) -> bool {
        let after = self.cursor.unwrap_or(Timestamp::from_ticks(i64::MIN));
        let sees_all = !self.caller.is_technician();
        match page.changes.rows.first() {
            Some(first) if sees_all && first.modified_dateutc > after => {
                self.pending_stamps
                    .extend(page.changes.rows.iter().map(|r| r.modified_dateutc));
                self.pending.push_back(page.whole());
                self.note_oldest();
                true
            }
            _ => false,
        }
    }

    fn events_in(&self, page: &SharedPage) -> Vec<(Timestamp, Bytes)> {
        let after = self.cursor.unwrap_or(Timestamp::from_ticks(i64::MIN));
        let technician = self.caller.is_technician().then_some(self.caller.user_id);
        let mut events: Vec<(Timestamp, Bytes)> = page
            .changes
            .rows
            .iter()
            .zip(&page.events)
            .filter(|(r, _)| r.modified_dateutc > after)
            .filter(|(r, _)| technician.is_none_or(|me| r.user_id == me))
            .map(|(r, event)| (r.modified_dateutc, event.clone()))
            .collect();
        events.extend(
            page.changes
                .exits
                .iter()
                .filter(|(_, from, stamp)| *stamp > after && technician == Some(*from))
                .map(|(id, _, stamp)| (*stamp, removed_event(*id, *stamp))),
        );
        events.sort_by_key(|(stamp, _)| *stamp);
        events
    }
}

pub async fn stream_job_dispatch_log_changes(
    State(state): State<AppState>,
    Caller(caller): Caller,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
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
    // A place in the tenant's shared reader before the first read, so that no change falls
    // between the two.
    let (watch, batches) = state.streams.watch(&state.store, &caller).await?;
    // The first page is read here so that an expired cursor is a plain 410, not a stream.
    let first = state.store.changes(&caller, cursor, PAGE).await?;
    let login = state.streams.login_check(
        &state.auth,
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0 .0),
    );
    let life = Life {
        streams: state.streams.clone(),
        closing: state.streams.closing.subscribe(),
        revoked: login.revoked.clone(),
        _login: login,
        _slot: slot,
    };
    let mut feed = Feed {
        store: state.store.clone(),
        caller,
        cursor: first.last.or(cursor),
        // A first page that reached the end of the feed needs no second read: what commits
        // after it comes from the tenant's reader, whose place was taken before it.
        caught_up: !first.has_more,
        batches,
        _watch: watch,
        pending_stamps: VecDeque::new(),
        oldest_undelivered: state.streams.track(),
        pending: VecDeque::new(),
        heartbeat: Box::pin(tokio::time::sleep(HEARTBEAT)),
        life_ends: Box::pin(life_ends(
            state.streams.closing.subscribe(),
            life.revoked.clone(),
        )),
        ended: false,
        life,
    };
    feed.push(events_of(&first));
    let frames = stream::unfold(feed, |mut feed| async move {
        feed.next_frame()
            .await
            .map(|frame| (Ok::<_, Infallible>(frame), feed))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames),
    )
        .into_response())
}
