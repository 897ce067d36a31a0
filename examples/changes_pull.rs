//! Client of the sync-pull benchmark (`bench/changes.sh`, `bench/speed.sh`): pulls every row
//! through `GET /api/JobDispatchLog/Changes?limit=N` from no cursor until `has_more` is false,
//! and prints the rate.
//!
//! It is a client as a phone or a sync job is: every page is parsed whole, every field of every
//! row. By default into typed rows, as the platform's .NET clients read a page into their
//! `JobDispatchLog` objects: GUIDs into UUIDs, date-times into instants, booleans, the
//! sequence and the strings, a missing field an error. With `--tree` into a `serde_json`
//! document tree instead, as a generic client does (every string and field name allocated).
//! With `--gzip` it asks for compressed answers (`Accept-Encoding: gzip`) as a phone on mobile
//! data does and inflates each page before parsing it; the bytes that crossed the wire are
//! counted either way. One keep-alive HTTP/1.1 connection over a plain `TcpStream`.
//!
//! By default the client does one thing at a time: fetch a page, parse it, ask for the next.
//! With `--overlap` it works as a sync client built for speed does: it reads the next cursor
//! from the end of the page it just received and asks for the next page at once, while a
//! second thread parses the pages received so far (still every row, whole); a pass ends when
//! the last page is parsed.
//! The client's own CPU time (from `/proc/self/stat`) is printed beside the rate.
//!
//! Output, one line per pass and a summary:
//! `pull pass=1 rows=100000 pages=21 seconds=1.234 rows_per_sec=81037 wire_bytes=… client_cpu_seconds=0.05`
//! `pull best_rows_per_sec=… first_rows_per_sec=… median_rows_per_sec=… wire_bytes_per_row=… client_cpu_pct=…`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Pulls the whole changes feed and reports rows per second")]
struct Args {
    /// host:port of the server (127.0.0.1 only is expected).
    #[arg(long)]
    addr: String,
    /// The whole Authorization header value ("Basic …").
    #[arg(long, env = "DISPATCHLOG_BENCH_AUTH", hide_env_values = true)]
    auth: String,
    /// Rows per page (`limit`).
    #[arg(long, default_value_t = 5000)]
    limit: usize,
    /// Full pulls from no cursor; each is timed on its own.
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Fail unless every pass sees exactly this many rows.
    #[arg(long)]
    expect: Option<u64>,
    /// Give up on a pass after this long.
    #[arg(long, default_value_t = 300.0)]
    max_seconds: f64,
    /// Ask for gzip-compressed pages.
    #[arg(long)]
    gzip: bool,
    /// Parse pages on a second thread while the next one is fetched.
    #[arg(long)]
    overlap: bool,
    /// Parse into a document tree instead of typed rows.
    #[arg(long)]
    tree: bool,
}

/// A page of the feed as a typed client reads it (unknown fields are ignored, as SPEC §4.2 asks
/// of the service too).
#[derive(serde::Deserialize)]
struct Page {
    value: Vec<FeedRow>,
    cursor: String,
    has_more: bool,
}

/// One row of the feed, every field of SPEC §2.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // Read for the parsing's sake; the bench only counts the rows.
struct FeedRow {
    id: uuid::Uuid,
    jobs_id: uuid::Uuid,
    user_id: uuid::Uuid,
    #[serde(deserialize_with = "instant")]
    date_create: time::OffsetDateTime,
    #[serde(deserialize_with = "instant")]
    date_proceeded: time::OffsetDateTime,
    is_accepted: bool,
    is_rejected: bool,
    rejected_reason: String,
    sys_logical_delete: bool,
    is_workshop: bool,
    #[serde(deserialize_with = "instant")]
    modified_dateutc: time::OffsetDateTime,
    sequence: i32,
    assigned_user_ids: String,
}

/// An RFC 3339 date-time, as the service writes them (`2026-01-11T21:02:31.7932294+00:00`).
fn instant<'de, D: serde::Deserializer<'de>>(d: D) -> Result<time::OffsetDateTime, D::Error> {
    let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
    time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
        .map_err(serde::de::Error::custom)
}

/// Parses a whole page, typed or as a tree; answers its rows, cursor and `has_more`.
fn parse_page(text: &[u8], tree: bool) -> anyhow::Result<(u64, String, bool)> {
    if tree {
        let page: serde_json::Value = serde_json::from_slice(text).context("a page")?;
        return page_fields(&page);
    }
    let page: Page = serde_json::from_slice(text).context("a page")?;
    Ok((page.value.len() as u64, page.cursor, page.has_more))
}

/// A keep-alive HTTP/1.1 connection.
struct Http {
    reader: BufReader<TcpStream>,
    host: String,
    auth: String,
    gzip: bool,
}

impl Http {
    fn connect(addr: &str, auth: &str, gzip: bool) -> anyhow::Result<Http> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Http {
            reader: BufReader::with_capacity(1 << 16, stream),
            host: addr.to_string(),
            auth: auth.to_string(),
            gzip,
        })
    }

    /// GET `path`; the body as it crossed the wire is read into `body` (cleared first).
    /// Returns the status and whether the body is gzipped.
    fn get(&mut self, path: &str, body: &mut Vec<u8>) -> anyhow::Result<(u16, bool)> {
        let encoding = if self.gzip {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nAccept: application/json\r\n{encoding}\r\n",
            self.host, self.auth
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let (mut length, mut chunked, mut gzipped) = (None, false, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>()?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("content-encoding") {
                gzipped = value.trim().eq_ignore_ascii_case("gzip");
            }
        }
        body.clear();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .with_context(|| format!("bad chunk size {line:?}"))?;
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..])?;
                line.clear();
                self.reader.read_line(&mut line)?;
                if size == 0 {
                    break;
                }
            }
        } else {
            let length = length.context("response without Content-Length or chunking")?;
            body.resize(length, 0);
            self.reader.read_exact(body)?;
        }
        Ok((status, gzipped))
    }
}

/// The `cursor` and `has_more` of a page, read from its end (they close the document), for the
/// overlapped client, which parses the page itself on another thread.
fn tail_fields(text: &[u8]) -> anyhow::Result<(String, bool)> {
    let tail = &text[text.len().saturating_sub(256)..];
    let find = |needle: &[u8]| tail.windows(needle.len()).rposition(|w| w == needle);
    let at = find(b"\"cursor\":\"").context("no cursor at the end of the page")? + 10;
    let end = tail[at..]
        .iter()
        .position(|b| *b == b'"')
        .context("an unterminated cursor")?;
    let cursor = String::from_utf8(tail[at..at + end].to_vec())?;
    let more = find(b"\"has_more\":").context("no has_more at the end of the page")? + 11;
    Ok((cursor, tail[more..].starts_with(b"true")))
}

/// Parses pages sent to it until the sender hangs up; answers the rows it saw.
fn parse_pages(pages: std::sync::mpsc::Receiver<Vec<u8>>, tree: bool) -> anyhow::Result<u64> {
    let mut rows = 0;
    for text in pages {
        rows += parse_page(&text, tree)?.0;
    }
    Ok(rows)
}

/// The rows, cursor and `has_more` of a page parsed into a tree.
fn page_fields(page: &serde_json::Value) -> anyhow::Result<(u64, String, bool)> {
    let rows = page["value"].as_array().context("a page without value")?;
    for row in rows {
        ensure!(row["id"].is_string(), "a row without id");
    }
    let cursor = page["cursor"]
        .as_str()
        .context("a page without cursor")?
        .to_string();
    let has_more = page["has_more"]
        .as_bool()
        .context("a page without has_more")?;
    Ok((rows.len() as u64, cursor, has_more))
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, s)| s).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0 // CLK_TCK is 100 on Linux
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.passes >= 1, "--passes must be at least 1");
    let mut http = Http::connect(&args.addr, &args.auth, args.gzip)?;
    let mut body = Vec::with_capacity(4 << 20);
    let mut inflated = Vec::with_capacity(8 << 20);
    let mut rates = Vec::new();
    let (mut total_seconds, mut total_cpu, mut total_rows, mut total_wire) = (0.0, 0.0, 0u64, 0u64);
    for pass in 1..=args.passes {
        let cpu0 = cpu_seconds();
        let started = Instant::now();
        let (mut rows, mut pages, mut wire) = (0u64, 0u64, 0u64);
        let mut cursor: Option<String> = None;
        let (to_parser, parser) = if args.overlap {
            let (send, receive) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
            let tree = args.tree;
            let parser = std::thread::spawn(move || parse_pages(receive, tree));
            (Some(send), Some(parser))
        } else {
            (None, None)
        };
        loop {
            let path = match &cursor {
                None => format!("/api/JobDispatchLog/Changes?limit={}", args.limit),
                Some(c) => format!("/api/JobDispatchLog/Changes?limit={}&since={c}", args.limit),
            };
            let (status, gzipped) = http.get(&path, &mut body)?;
            if status != 200 {
                bail!(
                    "GET {path}: status {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(500)])
                );
            }
            ensure!(
                gzipped == args.gzip,
                "asked for gzip: {}, got a gzipped page: {gzipped}",
                args.gzip
            );
            pages += 1;
            wire += body.len() as u64;
            let text = if gzipped {
                inflated.clear();
                flate2::read::GzDecoder::new(body.as_slice()).read_to_end(&mut inflated)?;
                &inflated
            } else {
                &body
            };
            let has_more = match &to_parser {
                Some(parser) => {
                    let (next, has_more) = tail_fields(text)?;
                    parser
                        .send(text.clone())
                        .map_err(|_| anyhow::anyhow!("the parsing thread ended"))?;
                    cursor = Some(next);
                    has_more
                }
                None => {
                    let (count, next, has_more) = parse_page(text, args.tree)?;
                    rows += count;
                    cursor = Some(next);
                    has_more
                }
            };
            if !has_more {
                break;
            }
            ensure!(
                started.elapsed().as_secs_f64() < args.max_seconds,
                "pass {pass} took longer than {} s",
                args.max_seconds
            );
        }
        drop(to_parser);
        if let Some(parser) = parser {
            rows = parser
                .join()
                .map_err(|_| anyhow::anyhow!("the parsing thread panicked"))??;
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        if let Some(expect) = args.expect {
            ensure!(
                rows == expect,
                "pass {pass}: pulled {rows} rows, expected {expect}"
            );
        }
        let rate = rows as f64 / seconds;
        println!(
            "pull pass={pass} rows={rows} pages={pages} seconds={seconds:.3} rows_per_sec={rate:.0} wire_bytes={wire} client_cpu_seconds={cpu:.3}"
        );
        rates.push(rate);
        total_seconds += seconds;
        total_cpu += cpu;
        total_rows += rows;
        total_wire += wire;
    }
    let first = rates[0];
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "pull best_rows_per_sec={:.0} first_rows_per_sec={first:.0} median_rows_per_sec={:.0} wire_bytes_per_row={:.1} client_cpu_pct={:.1}",
        sorted[sorted.len() - 1],
        sorted[sorted.len() / 2],
        total_wire as f64 / total_rows.max(1) as f64,
        total_cpu / total_seconds * 100.0
    );
    Ok(())
}
