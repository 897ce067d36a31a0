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
        out
    }
}

/// Appends what the store reports: rows and tombstones per tenant, read connections, writer
/// queue.
pub fn render_store(out: &mut String, stats: &crate::store::StoreStats) {
    use std::fmt::Write as _;
    out.push_str(
        "# HELP dispatchlog_rows Rows of job_dispatch_log per tenant, tombstones included.\n",
    );
    out.push_str("# TYPE dispatchlog_rows gauge\n");
    for (domain, rows, _) in &stats.tenants {
        let _ = writeln!(
            out,
            "dispatchlog_rows{{tenant=\"{}\"}} {rows}",
            label(domain)
        );
    }
    out.push_str(
        "# HELP dispatchlog_tombstones Logically deleted rows per tenant, not yet purged.\n",
    );
    out.push_str("# TYPE dispatchlog_tombstones gauge\n");
    for (domain, _, tombstones) in &stats.tenants {
        let _ = writeln!(
            out,
            "dispatchlog_tombstones{{tenant=\"{}\"}} {tombstones}",
            label(domain)
        );
    }
    out.push_str("# HELP dispatchlog_pool_idle_readers Read connections open and idle.\n");
    out.push_str("# TYPE dispatchlog_pool_idle_readers gauge\n");
    let _ = writeln!(out, "dispatchlog_pool_idle_readers {}", stats.idle_readers);
    out.push_str("# HELP dispatchlog_writer_queue Write jobs waiting for the writer now.\n");
    out.push_str("# TYPE dispatchlog_writer_queue gauge\n");
    let _ = writeln!(out, "dispatchlog_writer_queue {}", stats.writer_queue);
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

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
