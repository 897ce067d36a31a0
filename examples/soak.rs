//! Load and sampling program of the soak harness (`bench/soak.sh`).
//!
//! For `--minutes` it runs a mixed load against one server on 127.0.0.1 and samples the
//! server every `--sample-seconds` (10 s); at the end it prints a markdown table of the samples,
//! the totals, and a verdict. It exits 1 when a rule below is broken.
//!
//! The load, every loop bounded by the same deadline:
//! - `--save-workers` dispatchers saving realistic rows (`POST /api/JobDispatchLog/Save`, every
//!   field of SPEC §2 present, dates with 7 fraction digits): new jobs of 1–3 dispatches
//!   (sequence 1–3), about 60 % pending, 30 % accepted, 10 % rejected with a reason, 20 %
//!   workshop (never rejected); a share of the dispatches goes to the technicians' `user_id`s
//!   (always created pending, so the technicians decide them). One save in ten re-saves one of
//!   the worker's earlier pending rows: accepted, or logically deleted.
//! - `--list-workers` readers of `GET /api/JobDispatchLog?$top=20&$filter=…` (several filters:
//!   state, job, technician, reason text, the original's `modified_dateutc gt X` sync).
//! - `--feed-pullers` clients of `GET /api/JobDispatchLog/Changes?since=CURSOR&limit=500`,
//!   each keeping its cursor (the first as the admin, the others as technicians).
//! - `--streams` open `GET /api/JobDispatchLog/Changes/Stream` streams, `--admin-streams` of
//!   them as the admin and the rest spread over the technicians, read until the deadline
//!   (resumed with `Last-Event-ID` if the server ends one).
//! - one loop per technician: lists its own pending rows, accepts (with an offline decision
//!   time) or rejects (with a reason; never a workshop row) a few of them, pauses.
//!
//! Samples: server RSS (`VmRSS`) and threads, open files (`/proc/PID/fd`), the client
//! connections the server holds (`dispatchlog_http_connections` from `/metrics`), SQLite
//! database and `-wal` sizes (the WAL is also checked every 200 ms and the interval's maximum
//! reported), PostgreSQL connections of the database (`pg_stat_activity`), and the interval's
//! requests, p99 latency, non-2xx and 5xx answers.
//!
//! Rules (each breaks the run):
//! - any 5xx answer, and any request that got no answer (transport error or client timeout);
//! - any other non-2xx answer: the load only sends valid requests, and no two loops write the
//!   same row, so a 4xx means the harness or the server is wrong (listed by kind and status);
//! - RSS still rising after the first minute: the median of the last three samples more than
//!   `--rss-growth-pct` (20 %) above the median of the three samples from 60 s on (60, 70,
//!   80 s). Medians ignore one transient spike at either end (the allocator returns memory in
//!   bursts: single samples move by ±20 % on a busy machine); a leak moves all three.
//!   (Runs shorter than 90 s cannot apply the rule and say so.)
//! - a WAL sample (every 200 ms) above `--wal-limit-mib`;
//! - growing open files: the server's open files other than sockets ("other files": database,
//!   WAL and shared-memory files, pipes, epoll…; sockets are excluded because the streams and
//!   pooled keep-alive connections are held open on purpose and their number follows the load)
//!   — the smallest of the last three samples more than `--fd-slack` (64) above the median of
//!   the three samples from 60 s on. The slack covers the read pool opening its remaining connections late (SQLite: 2
//!   files per reader); a leak grows without bound and passes any slack. Sockets are shown
//!   beside the server's own count of client connections, whose difference (listeners, the
//!   database's sockets on PostgreSQL) should stay flat.
//! - PostgreSQL: a sample of the database's connections (`pg_stat_activity`) above
//!   `--pg-max-connections` (the read pool's maximum plus the writer), when given.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "Soak load and sampler for dispatchlog (see bench/soak.sh)")]
struct Args {
    /// host:port of the server (127.0.0.1 only).
    #[arg(long)]
    addr: String,
    /// The admin's whole Authorization header value ("Basic …").
    #[arg(long, env = "DISPATCHLOG_BENCH_AUTH", hide_env_values = true)]
    auth: String,
    /// The tenant (domain) of the admin and the technicians.
    #[arg(long)]
    domain: String,
    /// File of technicians, one "username password user_id" a line.
    #[arg(long)]
    technicians: PathBuf,
    /// Length of the load.
    #[arg(long)]
    minutes: f64,
    /// The server's process id (for RSS and open files).
    #[arg(long)]
    server_pid: u32,
    /// SQLite: the database file (its `-wal` beside it).
    #[arg(long)]
    sqlite_db: Option<PathBuf>,
    /// SQLite: the server's `--sqlite-wal-limit-mib` (its default).
    #[arg(long, default_value_t = 1024)]
    wal_limit_mib: u64,
    /// PostgreSQL: a connection string for sampling `pg_stat_activity` (e.g. of database postgres).
    #[arg(long)]
    postgres_monitor: Option<String>,
    /// PostgreSQL: the name of the server's database.
    #[arg(long)]
    postgres_db: Option<String>,
    /// PostgreSQL: the most connections the server may hold (its pool's maximum); 0: not checked.
    #[arg(long, default_value_t = 0)]
    pg_max_connections: i64,
    #[arg(long, default_value_t = 16)]
    save_workers: usize,
    #[arg(long, default_value_t = 4)]
    list_workers: usize,
    #[arg(long, default_value_t = 2)]
    feed_pullers: usize,
    #[arg(long, default_value_t = 300)]
    streams: usize,
    #[arg(long, default_value_t = 20)]
    admin_streams: usize,
    /// Share of new dispatches that go to the technicians.
    #[arg(long, default_value_t = 0.1)]
    technician_share: f64,
    #[arg(long, default_value_t = 10.0)]
    sample_seconds: f64,
    #[arg(long, default_value_t = 20.0)]
    rss_growth_pct: f64,
    #[arg(long, default_value_t = 64)]
    fd_slack: i64,
}

// ---------------------------------------------------------------------------------------------
// Small helpers: a PRNG (no dependency on a particular rand API), dates with 7 fraction digits.

struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        Rng(Uuid::new_v4().as_u64_pair().0 | 1)
    }
    /// SplitMix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Now minus `back_secs` (plus a random part below one second), as ISO 8601 UTC with 7 digits.
fn date7(rng: &mut Rng, back_secs: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ticks = (now.as_nanos() / 100) as i128 - (back_secs as i128) * 10_000_000
        + (rng.below(10_000_000) as i128);
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(ticks * 100)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}+00:00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond() / 100
    )
}

const REASONS: &[&str] = &[
    "Customer not on site",
    "Missing spare part for the compressor",
    "Vehicle breakdown on the way",
    "Overlapping appointment, please re-dispatch",
    "Outside my qualification (gas certificate)",
];

// ---------------------------------------------------------------------------------------------
// Statistics of the load.

#[derive(Default)]
struct Interval {
    latencies_us: Vec<u32>,
    requests: u64,
    non2xx: u64,
    server_errors: u64,
    no_answer: u64,
}

#[derive(Default)]
struct Totals {
    by_kind: BTreeMap<&'static str, u64>,
    /// (kind, status; 0 = no answer) → count, for everything but 2xx.
    failures: BTreeMap<(&'static str, u16), u64>,
    /// The first few failure bodies or errors, for the report.
    examples: Vec<String>,
    latencies_us: Vec<u32>,
    latencies_by_kind: BTreeMap<&'static str, Vec<u32>>,
}

#[derive(Default)]
struct Stats {
    interval: Mutex<Interval>,
    totals: Mutex<Totals>,
    streams_open: AtomicI64,
    stream_events: AtomicU64,
    stream_restarts: AtomicU64,
    wal_max: AtomicU64,
}

impl Stats {
    fn record(&self, kind: &'static str, status: Option<u16>, elapsed: Duration, body: &str) {
        let us = elapsed.as_micros().min(u32::MAX as u128) as u32;
        let ok = matches!(status, Some(200..=299));
        {
            let mut i = self.interval.lock().unwrap();
            i.requests += 1;
            i.latencies_us.push(us);
            if !ok {
                i.non2xx += 1;
                match status {
                    Some(s) if s >= 500 => i.server_errors += 1,
                    None => i.no_answer += 1,
                    _ => {}
                }
            }
        }
        let mut t = self.totals.lock().unwrap();
        *t.by_kind.entry(kind).or_default() += 1;
        t.latencies_us.push(us);
        t.latencies_by_kind.entry(kind).or_default().push(us);
        if !ok {
            *t.failures.entry((kind, status.unwrap_or(0))).or_default() += 1;
            if t.examples.len() < 10 {
                let text: String = body.chars().take(300).collect();
                t.examples.push(format!("{kind} {status:?}: {text}"));
            }
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------------
// The load.

#[derive(Clone)]
struct Technician {
    username: String,
    password: String,
    user_id: Uuid,
}

struct Ctx {
    base: String,
    auth: String,
    domain: String,
    client: reqwest::Client,
    stream_client: reqwest::Client,
    technicians: Vec<Technician>,
    technician_share: f64,
    deadline: tokio::time::Instant,
    stats: Stats,
    /// Recently created jobs, for list filters.
    recent_jobs: Mutex<VecDeque<Uuid>>,
}

enum Who<'a> {
    Admin,
    Technician(&'a Technician),
}

impl Ctx {
    fn running(&self) -> bool {
        tokio::time::Instant::now() < self.deadline
    }

    fn authorize(&self, who: &Who, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match who {
            Who::Admin => req.header("Authorization", &self.auth),
            Who::Technician(t) => {
                req.basic_auth(&t.username, Some(format!("{}@{}", t.password, self.domain)))
            }
        }
    }

    /// Sends a request, records it, and returns the status and body (None: no answer).
    async fn send(
        &self,
        kind: &'static str,
        who: &Who<'_>,
        req: reqwest::RequestBuilder,
    ) -> Option<(u16, String)> {
        let started = Instant::now();
        let req = self
            .authorize(who, req)
            .header("Accept", "application/json");
        let result = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let body = resp.text().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        match result {
            Ok((status, body)) => {
                self.stats
                    .record(kind, Some(status), started.elapsed(), &body);
                Some((status, body))
            }
            Err(e) => {
                self.stats
                    .record(kind, None, started.elapsed(), &error_chain(&e));
                None
            }
        }
    }

    fn remember_job(&self, job: Uuid) {
        let mut jobs = self.recent_jobs.lock().unwrap();
        jobs.push_back(job);
        if jobs.len() > 1000 {
            jobs.pop_front();
        }
    }

    fn recent_job(&self, rng: &mut Rng) -> Option<Uuid> {
        let jobs = self.recent_jobs.lock().unwrap();
        if jobs.is_empty() {
            None
        } else {
            Some(jobs[rng.below(jobs.len())])
        }
    }
}

/// An error with its causes ("error sending request: … : connection reset").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A dispatch of a new job, every field of SPEC §2 present.
fn new_row(ctx: &Ctx, rng: &mut Rng, job: Uuid, sequence: i32, workshop: bool) -> (Value, bool) {
    let to_technician = !ctx.technicians.is_empty() && rng.chance(ctx.technician_share);
    let user_id = if to_technician {
        ctx.technicians[rng.below(ctx.technicians.len())].user_id
    } else {
        Uuid::new_v4()
    };
    // 60 % pending, 30 % accepted, 10 % rejected; a workshop row is never rejected, so the
    // workshop share (20 % of all rows) is drawn among the others (2/9 of them).
    let draw = rng.unit();
    let (accepted, rejected) = if to_technician || draw < 0.6 {
        (false, false)
    } else if draw < 0.9 || workshop {
        (true, false)
    } else {
        (false, true)
    };
    let created_back = 60 + rng.below(3600) as u64;
    let date_create = date7(rng, created_back);
    let date_proceeded = if accepted || rejected {
        date7(rng, created_back - 30)
    } else {
        "1980-01-01T00:00:00.0000000+00:00".to_string()
    };
    let reason = if rejected {
        REASONS[rng.below(REASONS.len())]
    } else {
        ""
    };
    let row = json!({
        "id": Uuid::new_v4(),
        "jobs_id": job,
        "user_id": user_id,
        "date_create": date_create,
        "date_proceeded": date_proceeded,
        "is_accepted": accepted,
        "is_rejected": rejected,
        "rejected_reason": reason,
        "sys_logical_delete": false,
        "is_workshop": workshop,
        "modified_dateutc": date7(rng, 0),
        "sequence": sequence,
        "assigned_user_ids": "",
    });
    (row, to_technician)
}

async fn save_worker(ctx: Arc<Ctx>) {
    let mut rng = Rng::new();
    // This worker's own pending rows (never a technician's), for re-saves.
    let mut pending: VecDeque<Value> = VecDeque::new();
    let url = format!("{}/api/JobDispatchLog/Save", ctx.base);
    while ctx.running() {
        if rng.chance(0.1) && !pending.is_empty() {
            let index = rng.below(pending.len());
            let mut row = pending.remove(index).unwrap_or_default();
            if rng.chance(0.2) {
                row["sys_logical_delete"] = json!(true);
            } else {
                row["is_accepted"] = json!(true);
                row["date_proceeded"] = json!(date7(&mut rng, 5));
            }
            let req = ctx.client.post(&url).json(&row);
            ctx.send("save (update)", &Who::Admin, req).await;
            continue;
        }
        let job = Uuid::new_v4();
        let workshop = rng.chance(0.2);
        let dispatches = 1 + rng.below(3);
        for sequence in 1..=dispatches {
            if !ctx.running() {
                break;
            }
            let (row, to_technician) = new_row(&ctx, &mut rng, job, sequence as i32, workshop);
            let req = ctx.client.post(&url).json(&row);
            let answer = ctx.send("save (insert)", &Who::Admin, req).await;
            let pending_row = row["is_accepted"] == json!(false)
                && row["is_rejected"] == json!(false)
                && !to_technician;
            if matches!(answer, Some((201, _))) && pending_row {
                pending.push_back(row);
                if pending.len() > 200 {
                    pending.pop_front();
                }
            }
        }
        ctx.remember_job(job);
    }
}

/// A list's kind (for the report) and its query: the `$filter` value, then optionally
/// `&$orderby=…`.
fn list_query(ctx: &Ctx, rng: &mut Rng) -> (&'static str, String) {
    let job = ctx.recent_job(rng);
    let technician = if ctx.technicians.is_empty() {
        None
    } else {
        Some(ctx.technicians[rng.below(ctx.technicians.len())].user_id)
    };
    match rng.below(5) {
        0 => (
            "list (accepted)",
            "is_accepted eq true and sys_logical_delete eq false&$orderby=modified_dateutc desc"
                .to_string(),
        ),
        1 if job.is_some() => (
            "list (job)",
            format!("jobs_id eq {}", job.unwrap_or_default()),
        ),
        2 if technician.is_some() => (
            "list (technician's pending)",
            format!(
                "user_id eq {} and is_accepted eq false and is_rejected eq false",
                technician.unwrap_or_default()
            ),
        ),
        3 => (
            "list (reason)",
            "is_rejected eq true and contains(rejected_reason,'part')&$orderby=modified_dateutc desc"
                .to_string(),
        ),
        _ => (
            "list (modified since)",
            format!(
                "modified_dateutc gt {}&$orderby=modified_dateutc",
                &date7(rng, 5)[..27]
            ),
        ),
    }
}

async fn list_worker(ctx: Arc<Ctx>) {
    let mut rng = Rng::new();
    while ctx.running() {
        let (kind, query) = list_query(&ctx, &mut rng);
        // `$filter` value first; the rest of the query string is appended as written.
        let (filter, rest) = query.split_once('&').unwrap_or((&query, ""));
        let mut url = reqwest::Url::parse(&format!("{}/api/JobDispatchLog", ctx.base))
            .expect("a valid base address");
        url.query_pairs_mut()
            .append_pair("$top", "20")
            .append_pair("$filter", filter);
        if let Some((name, value)) = rest.split_once('=') {
            url.query_pairs_mut().append_pair(name, value);
        }
        ctx.send(kind, &Who::Admin, ctx.client.get(url)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn feed_puller(ctx: Arc<Ctx>, technician: Option<Technician>) {
    let who = match &technician {
        Some(t) => Who::Technician(t),
        None => Who::Admin,
    };
    let mut cursor: Option<String> = None;
    while ctx.running() {
        let mut url = reqwest::Url::parse(&format!("{}/api/JobDispatchLog/Changes", ctx.base))
            .expect("a valid base address");
        url.query_pairs_mut().append_pair("limit", "500");
        if let Some(c) = &cursor {
            url.query_pairs_mut().append_pair("since", c);
        }
        let mut more = false;
        if let Some((200, body)) = ctx.send("changes", &who, ctx.client.get(url)).await {
            if let Ok(page) = serde_json::from_str::<Value>(&body) {
                if let Some(c) = page["cursor"].as_str() {
                    cursor = Some(c.to_string());
                }
                more = page["has_more"].as_bool().unwrap_or(false);
            }
        }
        if !more {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn technician_loop(ctx: Arc<Ctx>, technician: Technician) {
    let mut rng = Rng::new();
    let who = Who::Technician(&technician);
    // Stagger the start so the technicians do not move in step.
    tokio::time::sleep(Duration::from_millis(rng.below(1000) as u64)).await;
    while ctx.running() {
        let mut url = reqwest::Url::parse(&format!("{}/api/JobDispatchLog", ctx.base))
            .expect("a valid base address");
        url.query_pairs_mut()
            .append_pair("$top", "20")
            .append_pair(
                "$filter",
                "is_accepted eq false and is_rejected eq false and sys_logical_delete eq false",
            )
            .append_pair("$orderby", "modified_dateutc desc");
        let rows = match ctx.send("technician list", &who, ctx.client.get(url)).await {
            Some((200, body)) => serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["value"].as_array().cloned())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for row in rows.iter().take(1 + rng.below(3)) {
            if !ctx.running() {
                break;
            }
            let Some(id) = row["id"].as_str() else {
                continue;
            };
            let workshop = row["is_workshop"].as_bool().unwrap_or(true);
            if workshop || rng.chance(0.75) {
                let url = format!("{}/api/JobDispatchLog/{id}/Accept", ctx.base);
                // The decision was taken offline a little earlier.
                let body = json!({ "date_proceeded": date7(&mut rng, 120) });
                ctx.send("accept", &who, ctx.client.post(url).json(&body))
                    .await;
            } else {
                let url = format!("{}/api/JobDispatchLog/{id}/Reject", ctx.base);
                let body = json!({ "rejected_reason": REASONS[rng.below(REASONS.len())] });
                ctx.send("reject", &who, ctx.client.post(url).json(&body))
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(500 + rng.below(1000) as u64)).await;
    }
}

/// One SSE stream, read until the deadline; resumed with `Last-Event-ID` if it ends early.
async fn stream_reader(ctx: Arc<Ctx>, technician: Option<Technician>) {
    let who = match &technician {
        Some(t) => Who::Technician(t),
        None => Who::Admin,
    };
    let url = format!("{}/api/JobDispatchLog/Changes/Stream", ctx.base);
    let mut last_id: Option<String> = None;
    let mut first = true;
    while ctx.running() {
        if !first {
            ctx.stats.stream_restarts.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        first = false;
        let started = Instant::now();
        let mut req = ctx
            .stream_client
            .get(&url)
            .header("Accept", "text/event-stream");
        if let Some(id) = &last_id {
            req = req.header("Last-Event-ID", id);
        }
        let req = ctx.authorize(&who, req);
        let resp = match tokio::time::timeout_at(ctx.deadline, req.send()).await {
            Err(_) => return,
            Ok(Err(e)) => {
                ctx.stats
                    .record("stream", None, started.elapsed(), &error_chain(&e));
                continue;
            }
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.text().await.unwrap_or_default();
            ctx.stats
                .record("stream", Some(status), started.elapsed(), &body);
            continue;
        }
        ctx.stats
            .record("stream", Some(status), started.elapsed(), "");
        ctx.stats.streams_open.fetch_add(1, Ordering::Relaxed);
        let mut resp = resp;
        let mut line = Vec::<u8>::new();
        loop {
            match tokio::time::timeout_at(ctx.deadline, resp.chunk()).await {
                Err(_) => break, // the deadline
                Ok(Ok(Some(chunk))) => {
                    for &b in chunk.iter() {
                        if b == b'\n' {
                            if let Some(id) = line.strip_prefix(b"id:") {
                                last_id = Some(String::from_utf8_lossy(id).trim().to_string());
                                ctx.stats.stream_events.fetch_add(1, Ordering::Relaxed);
                            }
                            line.clear();
                        } else {
                            line.push(b);
                        }
                    }
                }
                Ok(Ok(None)) => {
                    if ctx.running() {
                        ctx.stats.record(
                            "stream",
                            None,
                            Duration::ZERO,
                            "the server ended the stream",
                        );
                    }
                    break;
                }
                Ok(Err(e)) => {
                    ctx.stats
                        .record("stream", None, Duration::ZERO, &error_chain(&e));
                    break;
                }
            }
        }
        ctx.stats.streams_open.fetch_sub(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// Sampling.

struct Sample {
    t: f64,
    rss_kib: u64,
    threads: u64,
    fds: i64,
    sockets: i64,
    /// None: `/metrics` did not answer within 3 s.
    http_connections: Option<i64>,
    db_bytes: u64,
    wal_max_bytes: u64,
    pg_connections: Option<i64>,
    streams_open: i64,
    requests: u64,
    p99_ms: f64,
    non2xx: u64,
    server_errors: u64,
    no_answer: u64,
}

impl Sample {
    fn other_fds(&self) -> i64 {
        self.fds - self.sockets
    }
}

/// A number from `/proc/PID/status` (`VmRSS:` in KiB, `Threads:`).
fn proc_status(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("the server (pid {pid}) is gone"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Open files of a process, and how many of them are sockets.
fn open_fds(pid: u32) -> anyhow::Result<(i64, i64)> {
    let (mut all, mut sockets) = (0, 0);
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        all += 1;
        // A file closed since the listing has no link any more: counted, not as a socket.
        if let Ok(target) = std::fs::read_link(entry?.path()) {
            if target.to_string_lossy().starts_with("socket:") {
                sockets += 1;
            }
        }
    }
    Ok((all, sockets))
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Un-labelled series of `/metrics` by name.
async fn metrics(ctx: &Ctx) -> BTreeMap<String, f64> {
    let url = format!("{}/metrics", ctx.base);
    let mut out = BTreeMap::new();
    let Ok(resp) = ctx
        .client
        .get(url)
        .header("Authorization", &ctx.auth)
        .timeout(Duration::from_secs(3))
        .send()
        .await
    else {
        return out;
    };
    let Ok(text) = resp.text().await else {
        return out;
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.split_whitespace();
        if let (Some(name), Some(value)) = (parts.next(), parts.next()) {
            if let Ok(v) = value.parse::<f64>() {
                out.insert(name.to_string(), v);
            }
        }
    }
    out
}

struct PgMonitor {
    client: tokio_postgres::Client,
    database: String,
}

impl PgMonitor {
    async fn connect(url: &str, database: &str) -> anyhow::Result<PgMonitor> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .context("connecting to PostgreSQL for pg_stat_activity")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(PgMonitor {
            client,
            database: database.to_string(),
        })
    }

    async fn connections(&self) -> Option<i64> {
        self.client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&self.database],
            )
            .await
            .ok()
            .map(|row| row.get::<_, i64>(0))
    }
}

async fn take_sample(
    ctx: &Ctx,
    args: &Args,
    pg: Option<&PgMonitor>,
    t: f64,
) -> anyhow::Result<Sample> {
    let interval = std::mem::take(&mut *ctx.stats.interval.lock().unwrap());
    let mut latencies = interval.latencies_us;
    latencies.sort_unstable();
    let (fds, sockets) = open_fds(args.server_pid)?;
    let m = metrics(ctx).await;
    let db_bytes = args.sqlite_db.as_deref().map(file_size).unwrap_or(0);
    let wal_now = args
        .sqlite_db
        .as_deref()
        .map(|d| file_size(&wal_path(d)))
        .unwrap_or(0);
    let wal_max_bytes = ctx.stats.wal_max.swap(0, Ordering::Relaxed).max(wal_now);
    let pg_connections = match pg {
        Some(pg) => pg.connections().await,
        None => None,
    };
    Ok(Sample {
        t,
        rss_kib: proc_status(args.server_pid, "VmRSS:")?,
        threads: proc_status(args.server_pid, "Threads:")?,
        fds,
        sockets,
        http_connections: m.get("dispatchlog_http_connections").map(|v| *v as i64),
        db_bytes,
        wal_max_bytes,
        pg_connections,
        streams_open: ctx.stats.streams_open.load(Ordering::Relaxed),
        requests: interval.requests,
        p99_ms: percentile(&latencies, 99.0),
        non2xx: interval.non2xx,
        server_errors: interval.server_errors,
        no_answer: interval.no_answer,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_table(samples: &[Sample], args: &Args) {
    let sqlite = args.sqlite_db.is_some();
    let pg = args.postgres_db.is_some();
    let mut header = String::from(
        "| t (s) | RSS MiB | threads | open files | sockets | client conns | other files |",
    );
    let mut rule = String::from("|---:|---:|---:|---:|---:|---:|---:|");
    if sqlite {
        header.push_str(" DB MiB | WAL MiB (max) |");
        rule.push_str("---:|---:|");
    }
    if pg {
        header.push_str(" PG conns |");
        rule.push_str("---:|");
    }
    header.push_str(" streams | requests | req/s | p99 ms | non-2xx | 5xx | no answer |");
    rule.push_str("---:|---:|---:|---:|---:|---:|---:|");
    println!("{header}\n{rule}");
    let mut previous_t = 0.0;
    for s in samples {
        let interval_secs = (s.t - previous_t).max(0.001);
        previous_t = s.t;
        let mut line = format!(
            "| {:.0} | {:.1} | {} | {} | {} | {} | {} |",
            s.t,
            s.rss_kib as f64 / 1024.0,
            s.threads,
            s.fds,
            s.sockets,
            s.http_connections
                .map_or_else(|| "?".to_string(), |c| c.to_string()),
            s.other_fds()
        );
        if sqlite {
            line.push_str(&format!(
                " {:.1} | {:.1} |",
                mib(s.db_bytes),
                mib(s.wal_max_bytes)
            ));
        }
        if pg {
            match s.pg_connections {
                Some(c) => line.push_str(&format!(" {c} |")),
                None => line.push_str(" ? |"),
            }
        }
        line.push_str(&format!(
            " {} | {} | {:.0} | {:.1} | {} | {} | {} |",
            s.streams_open,
            s.requests,
            s.requests as f64 / interval_secs,
            s.p99_ms,
            s.non2xx,
            s.server_errors,
            s.no_answer
        ));
        println!("{line}");
    }
}

fn median3(mut v: [f64; 3]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[1]
}

/// The rules of the module comment; returns the broken ones.
fn verdict(samples: &[Sample], args: &Args, totals: &Totals) -> (Vec<String>, Vec<String>) {
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    let server_errors: u64 = samples.iter().map(|s| s.server_errors).sum();
    let failed_5xx: u64 = totals
        .failures
        .iter()
        .filter(|((_, s), _)| *s >= 500)
        .map(|(_, n)| n)
        .sum();
    if server_errors > 0 || failed_5xx > 0 {
        failures.push(format!(
            "{} answers were 5xx",
            server_errors.max(failed_5xx)
        ));
    }
    let no_answer: u64 = totals
        .failures
        .iter()
        .filter(|((_, s), _)| *s == 0)
        .map(|(_, n)| n)
        .sum();
    if no_answer > 0 {
        failures.push(format!("{no_answer} requests got no answer (transport error, timeout or a stream ended by the server)"));
    }
    let other: u64 = totals
        .failures
        .iter()
        .filter(|((_, s), _)| (1..500).contains(s))
        .map(|(_, n)| n)
        .sum();
    if other > 0 {
        failures.push(format!("{other} answers were non-2xx below 500"));
    }
    if let Some(s) = samples
        .iter()
        .find(|s| s.wal_max_bytes > args.wal_limit_mib << 20)
    {
        failures.push(format!(
            "the WAL reached {:.1} MiB at {:.0} s, above its limit of {} MiB",
            mib(s.wal_max_bytes),
            s.t,
            args.wal_limit_mib
        ));
    }
    // The three samples from the one at 60 s on (taken late on a busy machine: 59.5 s is
    // the 60 s sample).
    let first: Vec<&Sample> = samples.iter().filter(|s| s.t >= 59.5).take(3).collect();
    let last3: Vec<&Sample> = samples.iter().rev().take(3).collect();
    match (first.as_slice(), last3.as_slice()) {
        ([b0, b1, b2], [_, _, oldest_of_last]) if oldest_of_last.t > b0.t => {
            let base_t = b0.t;
            let base_rss = median3([b0.rss_kib as f64, b1.rss_kib as f64, b2.rss_kib as f64]);
            let base_fds =
                median3([b0.other_fds() as f64, b1.other_fds() as f64, b2.other_fds() as f64])
                    as i64;
            let rss_end = median3([
                last3[0].rss_kib as f64,
                last3[1].rss_kib as f64,
                last3[2].rss_kib as f64,
            ]);
            let growth = (rss_end / base_rss - 1.0) * 100.0;
            let text = format!(
                "RSS: median of the three samples from {:.0} s on {:.1} MiB, of the last three {:.1} MiB ({:+.1} %, limit +{:.0} %)",
                base_t,
                base_rss / 1024.0,
                rss_end / 1024.0,
                growth,
                args.rss_growth_pct
            );
            if growth > args.rss_growth_pct {
                failures.push(text);
            } else {
                notes.push(text);
            }
            let fds_end = last3.iter().map(|s| s.other_fds()).min().unwrap_or(0);
            let text = format!(
                "open files other than sockets: median of the three samples from {:.0} s on {}, smallest of the last three {} (limit +{})",
                base_t,
                base_fds,
                fds_end,
                args.fd_slack
            );
            if fds_end > base_fds + args.fd_slack {
                failures.push(text);
            } else {
                notes.push(text);
            }
        }
        _ => notes.push(
            "the run is too short to compare RSS and open files with the first minute (needs the samples at 60, 70, 80 s and a later one)"
                .to_string(),
        ),
    }
    if args.pg_max_connections > 0 {
        if let Some(max) = samples.iter().filter_map(|s| s.pg_connections).max() {
            let text = format!(
                "PostgreSQL connections of the database: at most {max} (the server's pool allows {})",
                args.pg_max_connections
            );
            if max > args.pg_max_connections {
                failures.push(text);
            } else {
                notes.push(text);
            }
        }
    }
    (failures, notes)
}

fn read_technicians(path: &Path) -> anyhow::Result<Vec<Technician>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [username, password, user_id] = parts[..] else {
            bail!("bad technician line {line:?}: want \"username password user_id\"");
        };
        out.push(Technician {
            username: username.to_string(),
            password: password.to_string(),
            user_id: user_id.parse().context("bad user_id")?,
        });
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.addr.starts_with("127.0.0.1:") {
        bail!("--addr must be on 127.0.0.1");
    }
    let technicians = read_technicians(&args.technicians)?;
    let run = Duration::from_secs_f64(args.minutes * 60.0);
    let started = tokio::time::Instant::now();
    // The last sample is taken at `run`; the load goes on a little longer, so that sample sees
    // it (streams still open) rather than its wind-down.
    let sampling_end = started + run;
    let deadline = sampling_end + Duration::from_secs(3);
    // Idle pooled connections are dropped well before the server's keep-alive limit (its
    // --header-timeout, 10 s), so a request is never sent on a connection the server is closing.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()?;
    let stream_client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()?;
    let ctx = Arc::new(Ctx {
        base: format!("http://{}", args.addr),
        auth: args.auth.clone(),
        domain: args.domain.clone(),
        client,
        stream_client,
        technicians: technicians.clone(),
        technician_share: args.technician_share,
        deadline,
        stats: Stats::default(),
        recent_jobs: Mutex::new(VecDeque::new()),
    });
    let pg = match (&args.postgres_monitor, &args.postgres_db) {
        (Some(url), Some(db)) => Some(PgMonitor::connect(url, db).await?),
        _ => None,
    };

    eprintln!(
        "[soak] {:.1} min: {} save workers, {} list workers, {} feed pullers, {} streams ({} as the admin), {} technicians",
        args.minutes,
        args.save_workers,
        args.list_workers,
        args.feed_pullers,
        args.streams,
        args.admin_streams.min(args.streams),
        technicians.len()
    );
    let mut tasks = Vec::new();
    // Streams first, opened in small batches so they do not arrive as one burst.
    for i in 0..args.streams {
        let technician = if i < args.admin_streams || technicians.is_empty() {
            None
        } else {
            Some(technicians[i % technicians.len()].clone())
        };
        tasks.push(tokio::spawn(stream_reader(ctx.clone(), technician)));
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for _ in 0..args.save_workers {
        tasks.push(tokio::spawn(save_worker(ctx.clone())));
    }
    for _ in 0..args.list_workers {
        tasks.push(tokio::spawn(list_worker(ctx.clone())));
    }
    for i in 0..args.feed_pullers {
        let technician = if i == 0 || technicians.is_empty() {
            None
        } else {
            Some(technicians[i % technicians.len()].clone())
        };
        tasks.push(tokio::spawn(feed_puller(ctx.clone(), technician)));
    }
    for t in &technicians {
        tasks.push(tokio::spawn(technician_loop(ctx.clone(), t.clone())));
    }
    // The WAL, every 200 ms: the interval's maximum goes into the next sample.
    if let Some(db) = &args.sqlite_db {
        let wal = wal_path(db);
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            while ctx.running() {
                ctx.stats
                    .wal_max
                    .fetch_max(file_size(&wal), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    let every = Duration::from_secs_f64(args.sample_seconds);
    let mut samples = Vec::new();
    let mut next = started + every;
    let mut sampling_error = None;
    loop {
        let at = next.min(sampling_end);
        tokio::time::sleep_until(at).await;
        // The time the sample is taken (late if the machine is busy), for the rate.
        let t = (tokio::time::Instant::now() - started).as_secs_f64();
        match take_sample(&ctx, &args, pg.as_ref(), t).await {
            Ok(s) => {
                eprintln!(
                    "[soak] t={:.0}s rss={:.1}MiB threads={} fds={} conns={:?} wal={:.1}MiB pg={:?} streams={} requests={} p99={:.1}ms non2xx={} 5xx={}",
                    s.t,
                    s.rss_kib as f64 / 1024.0,
                    s.threads,
                    s.fds,
                    s.http_connections,
                    mib(s.wal_max_bytes),
                    s.pg_connections,
                    s.streams_open,
                    s.requests,
                    s.p99_ms,
                    s.non2xx,
                    s.server_errors
                );
                samples.push(s);
            }
            Err(e) => {
                sampling_error = Some(e);
                break;
            }
        }
        if at >= sampling_end {
            break;
        }
        next += every;
    }
    // Every loop ends at the deadline; a request in flight ends within the client timeout.
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(40), task).await;
    }
    if let Some(e) = sampling_error {
        return Err(e.context("sampling the server failed"));
    }

    let totals = std::mem::take(&mut *ctx.stats.totals.lock().unwrap());
    print_table(&samples, &args);
    let mut all = totals.latencies_us.clone();
    all.sort_unstable();
    let total: u64 = totals.by_kind.values().sum();
    println!();
    println!(
        "Requests: {total} in {:.1} min ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms. By kind: {}.",
        args.minutes,
        total as f64 / run.as_secs_f64(),
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        percentile(&all, 100.0),
        totals
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Latency by kind (p50 / p99 / max, ms): {}.",
        totals
            .latencies_by_kind
            .iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                v.sort_unstable();
                format!(
                    "{k} {:.1} / {:.1} / {:.1}",
                    percentile(&v, 50.0),
                    percentile(&v, 99.0),
                    percentile(&v, 100.0)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Streams: {} events received, {} re-opened.",
        ctx.stats.stream_events.load(Ordering::Relaxed),
        ctx.stats.stream_restarts.load(Ordering::Relaxed)
    );
    if !totals.failures.is_empty() {
        println!(
            "Non-2xx by kind and status (0 = no answer): {}.",
            totals
                .failures
                .iter()
                .map(|((k, s), n)| format!("{k} {s}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for example in &totals.examples {
            println!("  e.g. {example}");
        }
    }
    let (failures, notes) = verdict(&samples, &args, &totals);
    println!();
    for note in &notes {
        println!("- ok: {note}");
    }
    for failure in &failures {
        println!("- FAIL: {failure}");
    }
    if failures.is_empty() {
        println!("\nSOAK PASS");
        Ok(())
    } else {
        println!("\nSOAK FAIL");
        std::process::exit(1);
    }
}
