//! Prometheus metrics: a small process-wide registry of atomics, rendered in the text format.
//!
//! Written by hand rather than with the `metrics` + `metrics-exporter-prometheus` crates: the
//! service exposes a handful of series (requests, latencies, the SQLite writer's queue and group
//! commits, purge runs), and the exporter would bring its own HTTP listener, a global recorder
//! and a dozen transitive crates for that. One binary serves one registry, as Prometheus expects.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::store::TenantFigures;

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Group commit size buckets, in jobs (the writer takes at most 512).
const GROUP_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A cumulative histogram with fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in millionths of the unit, so it fits an atomic integer.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6).max(0.0) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

/// Series of one route and method.
#[derive(Debug)]
struct RouteSeries {
    by_status: BTreeMap<u16, u64>,
    latency: Histogram,
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Registry {
    routes: Mutex<BTreeMap<(String, String), RouteSeries>>,
    writer_queue_depth: AtomicU64,
    group_sizes: Histogram,
    purge_runs_ok: AtomicU64,
    purge_runs_failed: AtomicU64,
    purged_rows: AtomicU64,
    open_connections: AtomicU64,
    refused_connections: AtomicU64,
    write_timeouts: AtomicU64,
}

/// The registry of this process.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        routes: Mutex::new(BTreeMap::new()),
        writer_queue_depth: AtomicU64::new(0),
        group_sizes: Histogram::new(&GROUP_BUCKETS),
        purge_runs_ok: AtomicU64::new(0),
        purge_runs_failed: AtomicU64::new(0),
        purged_rows: AtomicU64::new(0),
        open_connections: AtomicU64::new(0),
        refused_connections: AtomicU64::new(0),
        write_timeouts: AtomicU64::new(0),
    })
}

impl crate::store::shared::writer::GroupObserver for Registry {
    fn group_formed(&self, jobs: usize, still_queued: usize) {
        self.record_group_commit(jobs, still_queued);
    }
}

/// Escapes a label value (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Registry {
    /// One answered request. `route` is the matched path template, never the raw path, so ids
    /// do not multiply the series.
    pub fn record_request(&self, route: &str, method: &str, status: u16, latency: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let series = routes
            .entry((route.to_string(), method.to_string()))
            .or_insert_with(|| RouteSeries {
                by_status: BTreeMap::new(),
                latency: Histogram::new(&LATENCY_BUCKETS),
            });
        *series.by_status.entry(status).or_insert(0) += 1;
        series.latency.observe(latency.as_secs_f64());
    }

    /// One group commit of the SQLite writer: how many write jobs it held, and how many jobs
    /// were still waiting when it started.
    pub fn record_group_commit(&self, jobs: usize, still_queued: usize) {
        self.group_sizes.observe(jobs as f64);
        self.writer_queue_depth
            .store(still_queued as u64, Ordering::Relaxed);
    }

    /// One run of the background purge.
    pub fn record_purge(&self, outcome: Result<u64, ()>) {
        match outcome {
            Ok(rows) => {
                self.purge_runs_ok.fetch_add(1, Ordering::Relaxed);
                self.purged_rows.fetch_add(rows, Ordering::Relaxed);
            }
            Err(()) => {
                self.purge_runs_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A client connection opened (true) or ended (false).
    pub fn record_connection(&self, opened: bool) {
        if opened {
            self.open_connections.fetch_add(1, Ordering::Relaxed);
        } else {
            self.open_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A connection refused because the instance had its maximum open.
    pub fn record_refused_connection(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed because its client accepted no data for the write timeout.
    pub fn record_write_timeout(&self) {
        self.write_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP dispatchlog_http_requests_total Requests answered, by route template, method and status.\n");
        out.push_str("# TYPE dispatchlog_http_requests_total counter\n");
        for ((route, method), series) in routes.iter() {
            for (status, count) in &series.by_status {
                let _ = writeln!(
                    out,
                    "dispatchlog_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                    label(route),
                    label(method)
                );
            }
        }
        out.push_str("# HELP dispatchlog_http_request_duration_seconds Time to answer a request, by route template and method.\n");
        out.push_str("# TYPE dispatchlog_http_request_duration_seconds histogram\n");
        for ((route, method), series) in routes.iter() {
            let labels = format!("route=\"{}\",method=\"{}\"", label(route), label(method));
            series.latency.render(
                &mut out,
                "dispatchlog_http_request_duration_seconds",
                &labels,
            );
        }
        drop(routes);
        out.push_str("# HELP dispatchlog_sqlite_writer_queue_depth Jobs waiting for the SQLite writer when its last group commit started.\n");
        out.push_str("# TYPE dispatchlog_sqlite_writer_queue_depth gauge\n");
        let _ = writeln!(
            out,
            "dispatchlog_sqlite_writer_queue_depth {}",
            self.writer_queue_depth.load(Ordering::Relaxed)
        );
        out.push_str("# HELP dispatchlog_sqlite_group_commit_size Write jobs committed together by one SQLite transaction.\n");
        out.push_str("# TYPE dispatchlog_sqlite_group_commit_size histogram\n");
        self.group_sizes
            .render(&mut out, "dispatchlog_sqlite_group_commit_size", "");
        out.push_str("# HELP dispatchlog_purge_runs_total Runs of the background purge of long-deleted rows, by outcome.\n");
        out.push_str("# TYPE dispatchlog_purge_runs_total counter\n");
        let _ = writeln!(
            out,
            "dispatchlog_purge_runs_total{{outcome=\"ok\"}} {}",
            self.purge_runs_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "dispatchlog_purge_runs_total{{outcome=\"failed\"}} {}",
            self.purge_runs_failed.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP dispatchlog_purged_rows_total Rows physically removed by the background purge.\n",
        );
        out.push_str("# TYPE dispatchlog_purged_rows_total counter\n");
        let _ = writeln!(
            out,
            "dispatchlog_purged_rows_total {}",
            self.purged_rows.load(Ordering::Relaxed)
        );
        out.push_str("# HELP dispatchlog_http_connections Client connections open now.\n");
        out.push_str("# TYPE dispatchlog_http_connections gauge\n");
        let _ = writeln!(
            out,
            "dispatchlog_http_connections {}",
            self.open_connections.load(Ordering::Relaxed)
        );
        out.push_str("# HELP dispatchlog_http_connections_refused_total Connections answered 503 and closed because the maximum was open.\n");
        out.push_str("# TYPE dispatchlog_http_connections_refused_total counter\n");
        let _ = writeln!(
            out,
            "dispatchlog_http_connections_refused_total {}",
            self.refused_connections.load(Ordering::Relaxed)
        );
        out.push_str("# HELP dispatchlog_http_write_timeouts_total Connections closed because the client accepted no data for the write timeout.\n");
        out.push_str("# TYPE dispatchlog_http_write_timeouts_total counter\n");
        let _ = writeln!(
            out,
            "dispatchlog_http_write_timeouts_total {}",
            self.write_timeouts.load(Ordering::Relaxed)
        );
        out
    }
}

/// Appends the change streams' figures.
pub fn render_streams(out: &mut String, open: usize, events_sent: u64, lag: Duration) {
    out.push_str("# HELP dispatchlog_streams_open Change streams (Server-Sent Events) open now.\n");
    out.push_str("# TYPE dispatchlog_streams_open gauge\n");
    let _ = writeln!(out, "dispatchlog_streams_open {open}");
    out.push_str("# HELP dispatchlog_stream_events_total Events sent on change streams.\n");
    out.push_str("# TYPE dispatchlog_stream_events_total counter\n");
    let _ = writeln!(out, "dispatchlog_stream_events_total {events_sent}");
    out.push_str("# HELP dispatchlog_sync_lag_seconds Age of the oldest change a connected stream has not been sent yet (0 when every stream is up to date).\n");
    out.push_str("# TYPE dispatchlog_sync_lag_seconds gauge\n");
    let _ = writeln!(out, "dispatchlog_sync_lag_seconds {}", lag.as_secs_f64());
}

/// Appends what the store reports about its connections.
pub fn render_store(out: &mut String, stats: &crate::store::StoreStats) {
    out.push_str("# HELP dispatchlog_pool_open_readers Read connections open, idle or in use.\n");
    out.push_str("# TYPE dispatchlog_pool_open_readers gauge\n");
    let _ = writeln!(out, "dispatchlog_pool_open_readers {}", stats.open_readers);
    out.push_str("# HELP dispatchlog_pool_idle_readers Read connections open and idle.\n");
    out.push_str("# TYPE dispatchlog_pool_idle_readers gauge\n");
    let _ = writeln!(out, "dispatchlog_pool_idle_readers {}", stats.idle_readers);
    out.push_str("# HELP dispatchlog_writer_queue Write jobs waiting for the writer now.\n");
    out.push_str("# TYPE dispatchlog_writer_queue gauge\n");
    let _ = writeln!(out, "dispatchlog_writer_queue {}", stats.writer_queue);
}

/// Which tenants' figures a scrape shows, and how they are labelled.
#[derive(Debug, Clone, Copy)]
pub struct TenantView {
    /// Only this tenant (an admin scraping the API's own `/metrics`); None: every tenant.
    pub only: Option<crate::store::TenantId>,
    /// Label series with the tenant's domain as well as its id. Off by default: a domain is
    /// a customer's name, and metrics travel to places (dashboards, a monitoring vendor)
    /// where customer names should not.
    pub names: bool,
}

/// Appends rows and tombstones per tenant, as counted `age` ago.
pub fn render_tenants(
    out: &mut String,
    figures: &[TenantFigures],
    age: Duration,
    view: TenantView,
) {
    let shown: Vec<&TenantFigures> = figures
        .iter()
        .filter(|t| view.only.is_none_or(|id| id == t.tenant_id))
        .collect();
    let labels = |t: &TenantFigures| {
        if view.names {
            format!(
                "tenant_id=\"{}\",tenant=\"{}\"",
                t.tenant_id,
                label(&t.domain)
            )
        } else {
            format!("tenant_id=\"{}\"", t.tenant_id)
        }
    };
    out.push_str(
        "# HELP dispatchlog_rows Rows of job_dispatch_log per tenant, tombstones included (as of the last count).\n",
    );
    out.push_str("# TYPE dispatchlog_rows gauge\n");
    for t in &shown {
        let _ = writeln!(out, "dispatchlog_rows{{{}}} {}", labels(t), t.rows);
    }
    out.push_str(
        "# HELP dispatchlog_tombstones Logically deleted rows per tenant, not yet purged (as of the last count).\n",
    );
    out.push_str("# TYPE dispatchlog_tombstones gauge\n");
    for t in &shown {
        let _ = writeln!(
            out,
            "dispatchlog_tombstones{{{}}} {}",
            labels(t),
            t.tombstones
        );
    }
    out.push_str("# HELP dispatchlog_tenant_figures_age_seconds How long ago the per-tenant row counts were taken.\n");
    out.push_str("# TYPE dispatchlog_tenant_figures_age_seconds gauge\n");
    let _ = writeln!(
        out,
        "dispatchlog_tenant_figures_age_seconds {}",
        age.as_secs_f64()
    );
}

/// The per-tenant row counts, counted at most once per `refresh`.
///
/// Counting reads every row of every tenant; Prometheus scrapes every 15–60 s, from several
/// servers, each scrape reaching any instance. The figures are for capacity planning, so a
/// count a minute old serves as well, at a fraction of the cost.
pub struct TenantFiguresCache {
    refresh: Duration,
    /// Held across the count, so that scrapes arriving together wait for one count.
    last: tokio::sync::Mutex<Option<(std::time::Instant, std::sync::Arc<Vec<TenantFigures>>)>>,
}

impl TenantFiguresCache {
    pub fn new(refresh: Duration) -> Self {
        TenantFiguresCache {
            refresh,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The figures and their age; counted anew only when older than `refresh`.
    pub async fn get(
        &self,
        store: &dyn crate::store::Store,
    ) -> Result<(std::sync::Arc<Vec<TenantFigures>>, Duration), crate::store::StoreError> {
        let mut last = self.last.lock().await;
        if let Some((at, figures)) = last.as_ref() {
            if at.elapsed() < self.refresh {
                return Ok((figures.clone(), at.elapsed()));
            }
        }
        let figures = std::sync::Arc::new(store.tenant_figures().await?);
        *last = Some((std::time::Instant::now(), figures.clone()));
        Ok((figures, Duration::ZERO))
    }
}

/// Appends the standard `process_*` series (as the Prometheus client libraries name them),
/// read from `/proc/self`. Elsewhere than on Linux there is nothing to read and nothing is
/// written.
pub fn render_process(out: &mut String) {
    #[cfg(target_os = "linux")]
    if let Some(p) = process::read() {
        let mut gauge = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        gauge(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        );
        gauge(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes as f64,
        );
        gauge(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes as f64,
        );
        gauge(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        );
        if let Some(open) = p.open_fds {
            gauge(
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                open as f64,
            );
        }
        if let Some(max) = p.max_fds {
            gauge(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                max as f64,
            );
        }
    }
}

#[cfg(target_os = "linux")]
mod process {
    //! `/proc/self/stat` (proc(5)), `/proc/stat`'s boot time, `/proc/self/fd` and the
    //! `RLIMIT_NOFILE` soft limit: the few numbers the standard series need, without a crate.

    pub struct Figures {
        pub cpu_seconds: f64,
        pub resident_bytes: u64,
        pub virtual_bytes: u64,
        pub start_time_seconds: f64,
        pub open_fds: Option<u64>,
        pub max_fds: Option<u64>,
    }

    pub fn read() -> Option<Figures> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())?;
        // SAFETY: sysconf only reads a configuration value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if ticks <= 0 || page <= 0 {
            return None;
        }
        let mut figures = parse_stat(&stat, ticks as f64, page as u64, boot_time)?;
        figures.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as u64);
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct it is given, nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            // rlim_t is u64 on 64-bit Linux but not on every Linux target.
            #[allow(clippy::unnecessary_cast)]
            let soft = limit.rlim_cur as u64;
            figures.max_fds = Some(soft);
        }
        Some(figures)
    }

    /// The fields after the command name, which is in parentheses and may itself hold spaces
    /// and parentheses: everything after the last `)`.
    pub fn parse_stat(stat: &str, ticks: f64, page: u64, boot_time: u64) -> Option<Figures> {
        let after_name = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // proc(5) numbers fields from 1 with the pid; `state` (3) is fields[0] here.
        let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
        let (utime, stime) = (field(14)?, field(15)?);
        let start_ticks = field(22)?;
        Some(Figures {
            cpu_seconds: (utime + stime) as f64 / ticks,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * page,
            start_time_seconds: boot_time as f64 + start_ticks as f64 / ticks,
            open_fds: None,
            max_fds: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&GROUP_BUCKETS);
        h.observe(1.0);
        h.observe(3.0);
        h.observe(1000.0);
        let mut out = String::new();
        h.render(&mut out, "g", "");
        assert!(out.contains("g_bucket{le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("g_bucket{le=\"4\"} 2\n"), "{out}");
        assert!(out.contains("g_bucket{le=\"512\"} 2\n"), "{out}");
        assert!(out.contains("g_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("g_count 3\n"), "{out}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn proc_stat_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (dispatch log) (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    250 150 0 0 20 0 9 0 12345 104857600 2560 18446744073709551615";
        let p = process::parse_stat(stat, 100.0, 4096, 1_700_000_000).unwrap();
        assert_eq!(p.cpu_seconds, 4.0);
        assert_eq!(p.virtual_bytes, 104_857_600);
        assert_eq!(p.resident_bytes, 2560 * 4096);
        assert_eq!(p.start_time_seconds, 1_700_000_123.45);
        assert!(process::parse_stat("garbage", 100.0, 4096, 0).is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured() {
        let mut out = String::new();
        render_process(&mut out);
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_start_time_seconds ",
            "process_open_fds ",
            "process_max_fds ",
        ] {
            assert!(out.lines().any(|l| l.starts_with(name)), "{name}: {out}");
        }
    }

    #[test]
    fn tenant_names_are_labels_only_when_asked_for() {
        let figures = vec![
            TenantFigures {
                tenant_id: 1,
                domain: "acme".into(),
                rows: 3,
                tombstones: 1,
            },
            TenantFigures {
                tenant_id: 2,
                domain: "other".into(),
                rows: 5,
                tombstones: 0,
            },
        ];
        let mut out = String::new();
        let view = TenantView {
            only: None,
            names: false,
        };
        render_tenants(&mut out, &figures, Duration::from_secs(7), view);
        assert!(
            out.contains("dispatchlog_rows{tenant_id=\"1\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("dispatchlog_tombstones{tenant_id=\"2\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("dispatchlog_tenant_figures_age_seconds 7\n"),
            "{out}"
        );
        assert!(!out.contains("acme"), "{out}");
        let mut out = String::new();
        let view = TenantView {
            only: Some(2),
            names: true,
        };
        render_tenants(&mut out, &figures, Duration::ZERO, view);
        assert!(
            out.contains("dispatchlog_rows{tenant_id=\"2\",tenant=\"other\"} 5\n"),
            "{out}"
        );
        assert!(
            !out.contains("acme") && !out.contains("tenant_id=\"1\""),
            "{out}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
