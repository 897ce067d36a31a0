//! Load client of the live-push benchmark (`bench/streams.sh`): many open change streams, and
//! what they cost the server and how fast a Save reaches them.
//!
//! One process holds every stream (a raw socket each, read with a 4 KiB buffer and scanned for
//! the row ids of the events, so a stream costs the client a few KiB), on a runtime of two
//! threads: the client shares the machine's cores with the server.
//!
//! 1. **Idle streams** (`--streams`, `--office-streams` of them as the admin and the
//!    dispatcher, the rest spread over the technicians): opened from the end of the feed
//!    (`since` = now), then left idle for `--idle-seconds`, while the server's CPU time
//!    (`/proc/PID/stat`) and, on PostgreSQL, the database's committed transactions
//!    (`pg_stat_database.xact_commit`) are counted; its RSS (`VmRSS`, `VmHWM`) is read at the
//!    end.
//! 2. **Delivery latency**, streams still open: Saves at `--rate` per second for
//!    `--latency-seconds` (open loop: one Save starts every 1/rate s, whatever the answers
//!    take), realistic rows with every field of SPEC §2, `--technician-share` of them for a
//!    technician. For each Save, the time from its answer to its event at each stream that
//!    should see it (every office stream, and the streams of the row's technician); an event
//!    that comes before the answer counts 0. Reported per Save (until the last of its streams
//!    has it) and per delivery; a delivery that never comes is counted as missed. Run against
//!    the streams' instance, then (with `--other-addr`) against a second instance on the same
//!    PostgreSQL database.
//! 3. **Save throughput** with `--concurrency` closed-loop Save clients (the same rows) for
//!    `--throughput-seconds`: without streams, with `--throughput-streams` streams open
//!    (`--throughput-office-streams` of them the office's, the rest technicians'), and with as
//!    many technicians' streams only; twice after a warm-up, the second time in the reverse
//!    order. Each ratio is the mean of its two runs over the mean of the two without, so a
//!    steady drift (the table growing with every run, a machine that gets busier or quieter)
//!    weighs the same on every side. The target is judged on the mix.
//!
//! It prints a markdown table (measure | value | target | result) and exits 1 when a target is
//! missed. Everything talks to 127.0.0.1 only, and every loop ends at its phase's deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use clap::Parser;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "Live-push benchmark client for dispatchlog (see bench/streams.sh)")]
struct Args {
    /// The instance holding the streams (and taking the same-instance Saves), on 127.0.0.1.
    #[arg(long)]
    addr: SocketAddr,
    /// A second instance on the same PostgreSQL database, for Saves across instances.
    #[arg(long)]
    other_addr: Option<SocketAddr>,
    /// The admin's whole Authorization header value ("Basic …").
    #[arg(long, env = "DISPATCHLOG_BENCH_AUTH", hide_env_values = true)]
    auth: String,
    /// The dispatcher's login, `username:password@domain`.
    #[arg(long)]
    dispatcher: String,
    /// The tenant (domain) of the users.
    #[arg(long)]
    domain: String,
    /// File of technicians, one "username password user_id" a line.
    #[arg(long)]
    technicians: PathBuf,
    /// The process id of the `--addr` instance (CPU time and RSS).
    #[arg(long)]
    server_pid: u32,
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Streams of the office (half as the admin, half as the dispatcher): they see every row.
    #[arg(long, default_value_t = 200)]
    office_streams: usize,
    #[arg(long, default_value_t = 30.0)]
    idle_seconds: f64,
    #[arg(long, default_value_t = 20.0)]
    latency_seconds: f64,
    /// Saves per second in the latency phase.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Share of the Saves dispatched to a technician (the others to users without streams).
    #[arg(long, default_value_t = 0.5)]
    technician_share: f64,
    #[arg(long, default_value_t = 2_000)]
    throughput_streams: usize,
    /// Office streams among them (default: the same share as among `--streams`).
    #[arg(long)]
    throughput_office_streams: Option<usize>,
    #[arg(long, default_value_t = 15.0)]
    throughput_seconds: f64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Streams being opened at once.
    #[arg(long, default_value_t = 200)]
    open_concurrency: usize,
    /// The server's `--login-recheck`, in seconds (for the bound on idle queries).
    #[arg(long, default_value_t = 2.0)]
    login_recheck: f64,
    /// PostgreSQL: a connection string of another database of the server (e.g. postgres),
    /// for reading `pg_stat_database`.
    #[arg(long)]
    pg_monitor: Option<String>,
    /// PostgreSQL: the name of the service's database.
    #[arg(long)]
    pg_db: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Rows.

/// SplitMix64: enough randomness for realistic rows, with no particular rand API.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        Rng(Uuid::new_v4().as_u64_pair().0 | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// Now minus `back_secs` (and a random part of a second), ISO 8601 UTC with 7 digits.
fn date7(rng: &mut Rng, back_secs: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ticks = (now.as_nanos() / 100) as i128 - (back_secs as i128) * 10_000_000
        + rng.below(10_000_000) as i128;
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
];

/// A dispatch of a new job, every field of SPEC §2 present: to a technician (`Some(index)`,
/// pending, as a dispatcher creates it) or to a user without streams (pending, accepted or
/// rejected with a reason; a fifth of them workshop dispatches, never rejected).
fn new_row(rng: &mut Rng, technicians: &[Technician], share: f64) -> (Value, Option<usize>) {
    let technician =
        (!technicians.is_empty() && rng.chance(share)).then(|| rng.below(technicians.len()));
    let user_id = technician.map_or_else(Uuid::new_v4, |t| technicians[t].user_id);
    let workshop = rng.chance(0.2);
    let draw = rng.below(10);
    let (accepted, rejected) = match (technician, draw) {
        (Some(_), _) | (None, 0..=5) => (false, false),
        (None, 9) if !workshop => (false, true),
        _ => (true, false),
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
        "jobs_id": Uuid::new_v4(),
        "user_id": user_id,
        "date_create": date_create,
        "date_proceeded": date_proceeded,
        "is_accepted": accepted,
        "is_rejected": rejected,
        "rejected_reason": reason,
        "sys_logical_delete": false,
        "is_workshop": workshop,
        "modified_dateutc": date7(rng, 0),
        "sequence": 1 + rng.below(3),
        "assigned_user_ids": "",
    });
    (row, technician)
}

struct Technician {
    authorization: String,
    user_id: Uuid,
}

fn basic(login: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(login)
    )
}

fn read_technicians(args: &Args) -> anyhow::Result<Vec<Technician>> {
    let text = std::fs::read_to_string(&args.technicians)
        .with_context(|| format!("reading {}", args.technicians.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [username, password, user_id] = parts[..] else {
                bail!("a technician line is 'username password user_id': {line}");
            };
            Ok(Technician {
                authorization: basic(&format!("{username}:{password}@{}", args.domain)),
                user_id: user_id.parse()?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Deliveries: which Save each event belongs to, when it came.

/// One Save of the latency phase.
struct SaveSlot {
    /// Streams that should get its event.
    expected: u32,
    received: AtomicU32,
    /// Nanoseconds since the bench's start; 0 until known.
    answered: AtomicU64,
    last_arrival: AtomicU64,
    ok: AtomicU32,
}

struct Deliveries {
    start: Instant,
    /// The Saves being watched, by row id.
    saves: RwLock<HashMap<Uuid, Arc<SaveSlot>>>,
    /// Per delivery: microseconds from the Save's answer (0 when the event came first).
    latencies: Mutex<Vec<u32>>,
    /// Events of rows not watched (the throughput phase's).
    other_events: AtomicU64,
    bytes: AtomicU64,
    /// Streams the server ended, or that broke.
    ended: AtomicUsize,
}

impl Deliveries {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn event(&self, id: &[u8]) {
        let arrival = self.now_ns();
        let slot = std::str::from_utf8(id)
            .ok()
            .and_then(|s| Uuid::parse_str(s).ok())
            .and_then(|id| self.saves.read().unwrap().get(&id).cloned());
        let Some(slot) = slot else {
            self.other_events.fetch_add(1, Ordering::Relaxed);
            return;
        };
        slot.received.fetch_add(1, Ordering::Relaxed);
        slot.last_arrival.fetch_max(arrival, Ordering::Relaxed);
        let answered = slot.answered.load(Ordering::Relaxed);
        let micros = if answered == 0 {
            0
        } else {
            arrival.saturating_sub(answered) / 1000
        };
        self.latencies
            .lock()
            .unwrap()
            .push(micros.min(u32::MAX as u64) as u32);
    }
}

/// What starts every event's data: a row or a removal, whose id comes first.
const ID_PREFIX: &[u8] = br#"{"id":""#;
const ID_LEN: usize = 36;

/// Reads a stream to its end, handing each event's row id to `deliveries`. Only the last bytes
/// of a read are kept for the next (an id cut between two reads).
async fn read_stream(mut socket: TcpStream, mut carry: Vec<u8>, deliveries: Arc<Deliveries>) {
    // 16 KiB: an office stream gets a page of events (tens of KiB) at a time.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let kept = carry.len();
        buf[..kept].copy_from_slice(&carry);
        let n = match socket.read(&mut buf[kept..]).await {
            Ok(0) | Err(_) => {
                deliveries.ended.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(n) => n,
        };
        deliveries.bytes.fetch_add(n as u64, Ordering::Relaxed);
        let data = &buf[..kept + n];
        let mut from = 0;
        let mut consumed = 0;
        while let Some(at) = find(&data[from..], ID_PREFIX) {
            let start = from + at + ID_PREFIX.len();
            if data.len() < start + ID_LEN {
                break;
            }
            deliveries.event(&data[start..start + ID_LEN]);
            from = start + ID_LEN;
            consumed = from;
        }
        let tail = data
            .len()
            .saturating_sub(ID_PREFIX.len() + ID_LEN - 1)
            .max(consumed);
        carry.clear();
        carry.extend_from_slice(&data[tail..]);
    }
}

/// Where `needle` starts in `haystack` (SIMD search: the office streams bring this client
/// 100+ MB a second, which a byte-by-byte search spent a good part of a shared core on).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Opens one stream from `since`; answers the socket and the body bytes read with the head.
async fn open_stream(
    addr: SocketAddr,
    authorization: &str,
    since: &str,
) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let mut socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let request = format!(
        "GET /api/JobDispatchLog/Changes/Stream?since={since} HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: {authorization}\r\nAccept: text/event-stream\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            bail!("the server closed the stream before its head");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&head, b"\r\n\r\n") {
            if !head.starts_with(b"HTTP/1.1 200") {
                let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
                bail!("stream refused: {}", String::from_utf8_lossy(line));
            }
            return Ok((socket, head.split_off(end + 4)));
        }
        if head.len() > 8192 {
            bail!("no end of the stream's head");
        }
    }
}

/// The cursor of "now": a stream opened from it sends only what commits later. Stamps follow
/// the server's clock (this machine's), so it skips every row answered before it.
fn cursor_now() -> String {
    dispatchlog::wire::cursor::encode_cursor(Some(dispatchlog::domain::Timestamp::now()))
}

/// Open streams, and who holds them.
struct OpenStreams {
    tasks: Vec<JoinHandle<()>>,
    /// Office streams open.
    office: u32,
    /// Streams open per technician.
    per_technician: Vec<u32>,
    failed: Vec<String>,
}

impl OpenStreams {
    fn close(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Opens `count` streams: `office` of them as the admin and the dispatcher, the rest spread
/// over the technicians. Each login is used once first (its first verification is slow, and
/// the same login's later streams find it cached).
async fn open_streams(
    ctx: &Ctx,
    count: usize,
    office: usize,
    deliveries: &Arc<Deliveries>,
) -> OpenStreams {
    let since = cursor_now();
    let office = office.min(count);
    let technicians = ctx.technicians.len().max(1);
    let who: Vec<Option<usize>> = (0..count)
        .map(|i| (i >= office).then(|| (i - office) % technicians))
        .map(|t| t.filter(|_| !ctx.technicians.is_empty()))
        .collect();
    // The first stream of each login comes first, two at a time.
    let mut order: Vec<usize> = Vec::with_capacity(count);
    let mut first_of_login = std::collections::HashSet::new();
    for (i, w) in who.iter().enumerate() {
        let login = match w {
            None => usize::MAX - i % 2,
            Some(t) => *t,
        };
        if first_of_login.insert(login) {
            order.push(i);
        }
    }
    let firsts = order.len();
    let mut taken = vec![false; count];
    for &i in &order {
        taken[i] = true;
    }
    order.extend((0..count).filter(|&i| !taken[i]));
    let mut open = OpenStreams {
        tasks: Vec::with_capacity(count),
        office: 0,
        per_technician: vec![0; ctx.technicians.len()],
        failed: Vec::new(),
    };
    let mut position = 0;
    while position < order.len() {
        let batch = if position < firsts {
            2.min(firsts - position)
        } else {
            ctx.open_concurrency
        };
        let chunk = &order[position..(position + batch).min(order.len())];
        position += chunk.len();
        let opened = futures_util::future::join_all(chunk.iter().map(|&i| {
            let authorization = match who[i] {
                None if i % 2 == 0 => ctx.admin.clone(),
                None => ctx.dispatcher.clone(),
                Some(t) => ctx.technicians[t].authorization.clone(),
            };
            let since = since.clone();
            let addr = ctx.addr;
            async move {
                // One retry: a refusal under the opening crowd is not what is measured.
                match open_stream(addr, &authorization, &since).await {
                    Ok(opened) => Ok(opened),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        open_stream(addr, &authorization, &since).await
                    }
                }
            }
        }))
        .await;
        for (&i, result) in chunk.iter().zip(opened) {
            match result {
                Ok((socket, body)) => {
                    match who[i] {
                        None => open.office += 1,
                        Some(t) => open.per_technician[t] += 1,
                    }
                    open.tasks
                        .push(tokio::spawn(read_stream(socket, body, deliveries.clone())));
                }
                Err(e) => open.failed.push(format!("{e:#}")),
            }
        }
    }
    open
}

// ---------------------------------------------------------------------------------------------
// The server's figures.

fn server_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(") ").context("a /proc stat line")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the command name.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// `VmRSS` and `VmHWM` of a process, in MiB.
fn memory_mib(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn metric(ctx: &Ctx, name: &str) -> Option<f64> {
    let text = ctx
        .client
        .get(format!("http://{}/metrics", ctx.addr))
        .header("Authorization", &ctx.admin)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits (at most `limit`) until the server counts `count` open streams.
async fn wait_for_streams(ctx: &Ctx, count: usize, limit: Duration) -> Option<f64> {
    let deadline = Instant::now() + limit;
    loop {
        let open = metric(ctx, "dispatchlog_streams_open").await;
        if open == Some(count as f64) || Instant::now() > deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Transactions committed and rolled back in the service's database.
async fn pg_transactions(ctx: &Ctx) -> Option<i64> {
    let (url, db) = (ctx.pg_monitor.clone()?, ctx.pg_db.clone()?);
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).ok()?;
        let row = client
            .query_one(
                "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = $1",
                &[&db],
            )
            .ok()?;
        Some(row.get::<_, i64>(0))
    })
    .await
    .ok()
    .flatten()
}

// ---------------------------------------------------------------------------------------------
// The phases.

struct Ctx {
    addr: SocketAddr,
    admin: String,
    dispatcher: String,
    technicians: Vec<Technician>,
    client: reqwest::Client,
    open_concurrency: usize,
    pg_monitor: Option<String>,
    pg_db: Option<String>,
}

/// A table line: measure, value, target, result (None: no target).
struct Line {
    measure: String,
    value: String,
    target: String,
    pass: Option<bool>,
}

fn line(measure: impl Into<String>, value: impl Into<String>) -> Line {
    Line {
        measure: measure.into(),
        value: value.into(),
        target: String::new(),
        pass: None,
    }
}

fn judged(measure: impl Into<String>, value: impl Into<String>, target: &str, pass: bool) -> Line {
    Line {
        measure: measure.into(),
        value: value.into(),
        target: target.to_string(),
        pass: Some(pass),
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(micros: u64) -> String {
    format!("{:.1} ms", micros as f64 / 1000.0)
}

/// Saves at a steady rate to `save_addr` while the streams read; the per-Save and
/// per-delivery latencies.
async fn latency_phase(
    ctx: &Ctx,
    args: &Args,
    streams: &OpenStreams,
    deliveries: &Arc<Deliveries>,
    save_addr: SocketAddr,
    label: &str,
) -> Vec<Line> {
    deliveries.latencies.lock().unwrap().clear();
    deliveries.saves.write().unwrap().clear();
    let url = format!("http://{save_addr}/api/JobDispatchLog/Save");
    let total = (args.rate * args.latency_seconds).round().max(1.0) as usize;
    let period = Duration::from_secs_f64(1.0 / args.rate.max(0.01));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rng = Rng::new();
    let mut slots = Vec::with_capacity(total);
    let mut saves = Vec::with_capacity(total);
    for _ in 0..total {
        ticker.tick().await;
        let (row, technician) = new_row(&mut rng, &ctx.technicians, args.technician_share);
        let expected = streams.office + technician.map_or(0, |t| streams.per_technician[t]);
        let slot = Arc::new(SaveSlot {
            expected,
            received: AtomicU32::new(0),
            answered: AtomicU64::new(0),
            last_arrival: AtomicU64::new(0),
            ok: AtomicU32::new(0),
        });
        let id: Uuid = row["id"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .unwrap_or_default();
        deliveries.saves.write().unwrap().insert(id, slot.clone());
        slots.push(slot.clone());
        let request = ctx
            .client
            .post(&url)
            .header("Authorization", &ctx.dispatcher)
            .header("Accept", "application/json")
            .json(&row);
        let deliveries = deliveries.clone();
        saves.push(tokio::spawn(async move {
            let answer = tokio::time::timeout(Duration::from_secs(10), async {
                let resp = request.send().await?;
                let status = resp.status();
                resp.bytes().await?;
                Ok::<_, reqwest::Error>(status)
            })
            .await;
            slot.answered.store(deliveries.now_ns(), Ordering::Relaxed);
            if matches!(answer, Ok(Ok(status)) if status.is_success()) {
                slot.ok.store(1, Ordering::Relaxed);
            }
        }));
    }
    for save in saves {
        let _ = save.await;
    }
    // Every event has a few seconds to arrive after the last answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && slots
            .iter()
            .any(|s| s.received.load(Ordering::Relaxed) < s.expected)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed_saves = slots
        .iter()
        .filter(|s| s.ok.load(Ordering::Relaxed) == 0)
        .count();
    let expected: u64 = slots.iter().map(|s| u64::from(s.expected)).sum();
    let received: u64 = slots
        .iter()
        .map(|s| u64::from(s.received.load(Ordering::Relaxed).min(s.expected)))
        .sum();
    let extra: u64 = slots
        .iter()
        .map(|s| {
            u64::from(
                s.received
                    .load(Ordering::Relaxed)
                    .saturating_sub(s.expected),
            )
        })
        .sum();
    let mut per_save: Vec<u64> = slots
        .iter()
        .filter(|s| s.expected > 0 && s.received.load(Ordering::Relaxed) >= s.expected)
        .map(|s| {
            s.last_arrival
                .load(Ordering::Relaxed)
                .saturating_sub(s.answered.load(Ordering::Relaxed))
                / 1000
        })
        .collect();
    per_save.sort_unstable();
    let mut per_delivery: Vec<u64> = deliveries
        .latencies
        .lock()
        .unwrap()
        .iter()
        .map(|&m| u64::from(m))
        .collect();
    per_delivery.sort_unstable();
    let p99 = percentile(&per_save, 99.0);
    let complete = per_save.len() == slots.len() && failed_saves == 0 && extra == 0;
    vec![
        line(
            format!("(b) {label}: Saves"),
            format!(
                "{} at {}/s over {} s, {} failed; {:.0} streams should see each on average",
                slots.len(),
                args.rate,
                args.latency_seconds,
                failed_saves,
                expected as f64 / slots.len().max(1) as f64
            ),
        ),
        judged(
            format!("(b) {label}: answer → event at every stream of the Save, p50 / p99 / max"),
            format!(
                "{} / {} / {}",
                ms(percentile(&per_save, 50.0)),
                ms(p99),
                ms(per_save.last().copied().unwrap_or(0))
            ),
            "p99 < 250 ms",
            p99 < 250_000 && !per_save.is_empty(),
        ),
        line(
            format!("(b) {label}: answer → event, per delivery, p50 / p99 / max"),
            format!(
                "{} / {} / {} ({} deliveries)",
                ms(percentile(&per_delivery, 50.0)),
                ms(percentile(&per_delivery, 99.0)),
                ms(per_delivery.last().copied().unwrap_or(0)),
                per_delivery.len()
            ),
        ),
        judged(
            format!("(b) {label}: deliveries missed / duplicated"),
            format!(
                "{} of {} missed, {} extra",
                expected - received,
                expected,
                extra
            ),
            "0 / 0",
            complete && expected == received,
        ),
    ]
}

/// `--concurrency` Save loops for `--throughput-seconds`: Saves answered 2xx per second, and
/// the non-2xx count.
async fn closed_loop(ctx: &Ctx, args: &Args, run: Duration) -> (f64, u64, f64) {
    let url = format!("http://{}/api/JobDispatchLog/Save", ctx.addr);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let client_cpu = own_cpu_seconds();
    let started = Instant::now();
    let deadline = started + run;
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, url, ok, failed) =
                (ctx.client.clone(), url.clone(), ok.clone(), failed.clone());
            let dispatcher = ctx.dispatcher.clone();
            let technicians: Vec<Technician> = ctx
                .technicians
                .iter()
                .map(|t| Technician {
                    authorization: String::new(),
                    user_id: t.user_id,
                })
                .collect();
            let share = args.technician_share;
            tokio::spawn(async move {
                let mut rng = Rng::new();
                while Instant::now() < deadline {
                    let (row, _) = new_row(&mut rng, &technicians, share);
                    let answer = client
                        .post(&url)
                        .header("Authorization", &dispatcher)
                        .header("Accept", "application/json")
                        .timeout(Duration::from_secs(10))
                        .json(&row)
                        .send()
                        .await;
                    let success = match answer {
                        Ok(resp) => {
                            let status = resp.status();
                            resp.bytes().await.is_ok() && status.is_success()
                        }
                        Err(_) => false,
                    };
                    if success {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let client_cpu = (own_cpu_seconds() - client_cpu) / elapsed * 100.0;
    (
        ok.load(Ordering::Relaxed) as f64 / elapsed,
        failed.load(Ordering::Relaxed),
        client_cpu,
    )
}

fn own_cpu_seconds() -> f64 {
    server_cpu_seconds(std::process::id()).unwrap_or(0.0)
}

fn new_deliveries() -> Arc<Deliveries> {
    Arc::new(Deliveries {
        start: Instant::now(),
        saves: RwLock::new(HashMap::new()),
        latencies: Mutex::new(Vec::new()),
        other_events: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        ended: AtomicUsize::new(0),
    })
}

fn report_open(lines: &mut Vec<Line>, label: &str, wanted: usize, open: &OpenStreams) {
    let technicians_with_streams = open.per_technician.iter().filter(|n| **n > 0).count();
    lines.push(judged(
        format!("{label} streams open"),
        format!(
            "{} of {} ({} office, {} over {} technicians); {} refused or failed{}",
            open.tasks.len(),
            wanted,
            open.office,
            open.tasks.len() as u32 - open.office,
            technicians_with_streams,
            open.failed.len(),
            open.failed
                .first()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        ),
        "all",
        open.tasks.len() == wanted,
    ));
}

async fn streams_phase(ctx: &Ctx, args: &Args, lines: &mut Vec<Line>) {
    let deliveries = new_deliveries();
    let opening = Instant::now();
    eprintln!("[streams_bench] opening {} streams", args.streams);
    let open = open_streams(ctx, args.streams, args.office_streams, &deliveries).await;
    eprintln!(
        "[streams_bench] {} streams open after {:.1} s",
        open.tasks.len(),
        opening.elapsed().as_secs_f64()
    );
    let counted = wait_for_streams(ctx, open.tasks.len(), Duration::from_secs(30)).await;
    report_open(lines, "(a)", args.streams, &open);
    lines.push(line(
        "(a) streams the server counts (`dispatchlog_streams_open`)",
        format!("{}", counted.unwrap_or(f64::NAN)),
    ));
    // Let the opening's work (logins, first reads) finish before the idle window. PostgreSQL
    // backends report their transactions up to 10 s late when they go idle
    // (`pg_stat_database`): on PostgreSQL the window starts after that, and its end is read
    // that much later too (the streams still idle), so both readings lag alike.
    let stats_lag = if ctx.pg_monitor.is_some() { 11 } else { 0 };
    tokio::time::sleep(Duration::from_secs(5 + stats_lag)).await;
    let logins = 2 + open.per_technician.iter().filter(|n| **n > 0).count();
    let events_before = deliveries.other_events.load(Ordering::Relaxed);
    let bytes_before = deliveries.bytes.load(Ordering::Relaxed);
    let ended_before = deliveries.ended.load(Ordering::Relaxed);
    let xacts_before = pg_transactions(ctx).await;
    let cpu_before = server_cpu_seconds(args.server_pid).unwrap_or(f64::NAN);
    let started = Instant::now();
    eprintln!("[streams_bench] idle window of {} s", args.idle_seconds);
    tokio::time::sleep(Duration::from_secs_f64(args.idle_seconds)).await;
    let cpu = server_cpu_seconds(args.server_pid).unwrap_or(f64::NAN) - cpu_before;
    let window = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(stats_lag)).await;
    let xacts_after = pg_transactions(ctx).await;
    let (rss, hwm) = memory_mib(&args.server_pid.to_string());
    let (client_rss, _) = memory_mib("self");
    let cpu_pct = cpu / window * 100.0;
    lines.push(judged(
        format!("(a) server CPU over {window:.0} s idle, % of one core"),
        format!("{cpu_pct:.2} % ({cpu:.2} CPU s)"),
        "< 5 %",
        cpu_pct < 5.0,
    ));
    lines.push(judged(
        "(a) server RSS at the end of the idle window: VmRSS (VmHWM)",
        format!("{rss:.0} MiB ({hwm:.0} MiB)"),
        "< 200 MiB",
        rss < 200.0 && hwm < 200.0,
    ));
    // Rechecking credentials reads the credentials version once per --login-recheck for the
    // whole instance (a user's row only when credentials changed), however many streams and
    // logins are open; nothing else reads while the streams are idle. The bound allows a row
    // read per login per recheck.
    let per_login_bound = (window / args.login_recheck).ceil() * logins as f64 * 1.5 + 10.0;
    match (xacts_before, xacts_after) {
        (Some(before), Some(after)) => {
            let delta = after - before;
            lines.push(judged(
                "(a) database transactions over the idle window (`pg_stat_database`)",
                format!(
                    "{delta} ({:.3} per stream; {} logins re-checked every {} s)",
                    delta as f64 / open.tasks.len().max(1) as f64,
                    logins,
                    args.login_recheck
                ),
                &format!(
                    "none per stream: ≤ {per_login_bound:.0} (1 per login per recheck, +50 %)"
                ),
                (delta as f64) <= per_login_bound,
            ));
        }
        _ => lines.push(line(
            "(a) database queries over the idle window",
            "not counted on SQLite (no query counter); by the code: an idle stream waits on its tenant's pages, shutdown, its login's check and its heartbeat; the checks of all logins read one number (the credentials version) per --login-recheck, and a user's row only after credentials changed",
        )),
    }
    lines.push(line(
        "(a) client: bytes received over the idle window; streams ended; client RSS",
        format!(
            "{} B, {} rows; {} ended; {client_rss:.0} MiB",
            deliveries.bytes.load(Ordering::Relaxed) - bytes_before,
            deliveries.other_events.load(Ordering::Relaxed) - events_before,
            deliveries.ended.load(Ordering::Relaxed) - ended_before
        ),
    ));

    eprintln!("[streams_bench] Saves on the same instance");
    let same = latency_phase(ctx, args, &open, &deliveries, ctx.addr, "same instance").await;
    lines.extend(same);
    if let Some(other) = args.other_addr {
        eprintln!("[streams_bench] Saves on the other instance");
        let cross = latency_phase(
            ctx,
            args,
            &open,
            &deliveries,
            other,
            "streams on A, Saves on B",
        )
        .await;
        lines.extend(cross);
    }
    let (rss, hwm) = memory_mib(&args.server_pid.to_string());
    lines.push(line(
        "(b) server RSS after the Saves: VmRSS (VmHWM)",
        format!("{rss:.0} MiB ({hwm:.0} MiB)"),
    ));
    lines.push(judged(
        "(a, b) streams ended by the server",
        format!("{}", deliveries.ended.load(Ordering::Relaxed)),
        "0",
        deliveries.ended.load(Ordering::Relaxed) == 0,
    ));
    open.close();
    let left = wait_for_streams(ctx, 0, Duration::from_secs(30)).await;
    eprintln!("[streams_bench] streams closed; the server counts {left:?}");
}

async fn throughput_phase(ctx: &Ctx, args: &Args, lines: &mut Vec<Line>) {
    let run = Duration::from_secs_f64(args.throughput_seconds);
    eprintln!("[streams_bench] Save throughput: warm-up (not counted)");
    closed_loop(ctx, args, Duration::from_secs(5)).await;
    let office = args
        .throughput_office_streams
        .unwrap_or(args.office_streams * args.throughput_streams / args.streams.max(1));
    // The streams' mix, then technicians' streams only (what the office's streams, which get
    // every Save, cost apart).
    let mixes = [office, 0];
    let mut without = Vec::new();
    let mut with: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    let mut events = [0u64; 2];
    let (mut failed, mut ended) = (0, 0);
    let mut opened_all = true;
    // Twice, the second time in the reverse order (without, mixes…, then mixes reversed,
    // without): the table grows with every run and Saves slow down as it does (by about 8 % a
    // run here), so in the same order every time the runs with streams, always later, were
    // also always on a larger table. Mirrored, a steady drift (the table, a machine getting
    // busier or quieter) weighs the same on every side.
    let mut order: Vec<Option<usize>> = vec![None];
    order.extend((0..mixes.len()).map(Some));
    let mirrored: Vec<Option<usize>> = order.iter().rev().copied().collect();
    for (round, phases) in [(1, order), (2, mirrored)] {
        for phase in phases {
            let Some(mix) = phase else {
                eprintln!(
                    "[streams_bench] Save throughput, c={}, without streams ({round}/2)",
                    args.concurrency
                );
                let (rate, failures, cpu) = closed_loop(ctx, args, run).await;
                without.push((rate, cpu));
                failed += failures;
                continue;
            };
            let office = &mixes[mix];
            let deliveries = new_deliveries();
            eprintln!(
                "[streams_bench] opening {} streams ({office} office)",
                args.throughput_streams
            );
            let open = open_streams(ctx, args.throughput_streams, *office, &deliveries).await;
            opened_all &= open.tasks.len() == args.throughput_streams;
            wait_for_streams(ctx, open.tasks.len(), Duration::from_secs(30)).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            if round == 1 && mix == 0 {
                report_open(lines, "(c)", args.throughput_streams, &open);
            }
            eprintln!("[streams_bench] Save throughput with streams ({round}/2)");
            let (rate, failures, cpu) = closed_loop(ctx, args, run).await;
            with[mix].push((rate, cpu));
            failed += failures;
            events[mix] += deliveries.other_events.load(Ordering::Relaxed);
            ended += deliveries.ended.load(Ordering::Relaxed);
            open.close();
            wait_for_streams(ctx, 0, Duration::from_secs(30)).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let mean = |runs: &[(f64, f64)]| runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64;
    let shown = |runs: &[(f64, f64)]| {
        runs.iter()
            .map(|(rate, cpu)| format!("{rate:.0} (client CPU {cpu:.0} %)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let seconds = 2.0 * args.throughput_seconds;
    lines.push(line(
        format!(
            "(c) Saves/s, c={}, {} s runs, no streams",
            args.concurrency, args.throughput_seconds
        ),
        shown(&without),
    ));
    for (mix, office) in mixes.iter().enumerate() {
        let ratio = mean(&with[mix]) / mean(&without) * 100.0;
        let who = if *office > 0 {
            format!("{office} office, the rest technicians'")
        } else {
            "all technicians'".to_string()
        };
        lines.push(line(
            format!(
                "(c) Saves/s with {} streams open ({who})",
                args.throughput_streams
            ),
            format!(
                "{}; {:.0} events/s received",
                shown(&with[mix]),
                events[mix] as f64 / seconds
            ),
        ));
        let measure = format!(
            "(c) throughput with {} streams ({who}) / without",
            args.throughput_streams
        );
        if mix == 0 {
            lines.push(judged(
                measure,
                format!("{ratio:.1} % ({failed} Saves not answered 2xx, {ended} streams ended)"),
                "≥ 80 %",
                ratio >= 80.0 && failed == 0 && ended == 0 && opened_all,
            ));
        } else {
            lines.push(line(measure, format!("{ratio:.1} %")));
        }
    }
}

fn print_table(lines: &[Line]) -> bool {
    println!("| measure | value | target | result |");
    println!("|---|---|---|---|");
    let mut pass = true;
    for l in lines {
        let result = match l.pass {
            Some(true) => "PASS",
            Some(false) => {
                pass = false;
                "FAIL"
            }
            None => "",
        };
        println!(
            "| {} | {} | {} | {} |",
            l.measure, l.value, l.target, result
        );
    }
    pass
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for addr in std::iter::once(args.addr).chain(args.other_addr) {
        if !addr.ip().is_loopback() {
            bail!("{addr}: the bench talks to 127.0.0.1 only");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let ctx = Ctx {
        addr: args.addr,
        admin: args.auth.clone(),
        dispatcher: basic(&args.dispatcher),
        technicians: read_technicians(&args)?,
        // Pooled connections are dropped before the server's idle limit (--header-timeout).
        client: reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(args.concurrency.max(64))
            .build()?,
        open_concurrency: args.open_concurrency.max(1),
        pg_monitor: args.pg_monitor.clone(),
        pg_db: args.pg_db.clone(),
    };
    let mut lines = Vec::new();
    if args.streams > 0 {
        streams_phase(&ctx, &args, &mut lines).await;
    }
    if args.throughput_streams > 0 && args.throughput_seconds > 0.0 {
        throughput_phase(&ctx, &args, &mut lines).await;
    }
    if !print_table(&lines) {
        std::process::exit(1);
    }
    Ok(())
}
