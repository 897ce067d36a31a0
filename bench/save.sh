#!/usr/bin/env bash
# Save benchmark: POST /api/JobDispatchLog/Save with unique rows from N concurrent connections
# (wrk + bench/realistic.lua: every field of SPEC §2, the realistic mix) against the release build on a fresh SQLite file, then two baselines
# on the same disk with the service's schema and statements and no HTTP
# (examples/sqlite_baseline.rs): (a) one commit per row, (b) 256 rows per commit.
# Prints a markdown table with the targets of the issue and PASS/FAIL.
#
# Settings (environment):
#   BENCH_ROW=realistic         the row saved: realistic (bench/realistic.lua, the default) or
#                               minimal (bench/save.lua: id, jobs_id and user_id only; an extra)
#   BENCH_SECONDS=20            measured wrk run
#   BENCH_WARMUP_SECONDS=3      wrk warm-up before it (also fills the login cache)
#   BENCH_CONNECTIONS=32        wrk -c
#   BENCH_THREADS=2             wrk -t
#   BENCH_BASELINE_SECONDS=10   duration of each baseline
#   BENCH_SKIP_BASELINES=0      1: only the HTTP run (for sweeps over BENCH_CONNECTIONS)
#   BENCH_TMPDIR=${TMPDIR:-/tmp}  parent of the temporary directory holding every database
#   BENCH_SKIP_BUILD=0          1: use the binaries already in target/release
#   BENCH_SERVER_BIN=…          another server binary (e.g. a copy of an older build, for A/B)
#   BENCH_SERVER_ARGS=…         more server options, e.g. "--sqlite-wal-limit-mib 256"
# Everything listens on and talks to 127.0.0.1 only; every load phase is bounded in time.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

SECONDS_RUN=${BENCH_SECONDS:-20}
WARMUP=${BENCH_WARMUP_SECONDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
BASELINE_SECONDS=${BENCH_BASELINE_SECONDS:-10}
SKIP_BASELINES=${BENCH_SKIP_BASELINES:-0}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
TMP_PARENT=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}

case ${BENCH_ROW:-realistic} in
    realistic) ROW_SCRIPT=bench/realistic.lua ;;
    minimal) ROW_SCRIPT=bench/save.lua ;;
    *) echo "BENCH_ROW must be realistic or minimal" >&2; exit 2 ;;
esac

BENCH_NAME=save.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
ensure_wrk

if [ "$SKIP_BUILD" != 1 ]; then
    log "building the release binary and the baseline example"
    cargo build --release --quiet
    cargo build --release --quiet --example sqlite_baseline
fi
SERVER_BIN=${BENCH_SERVER_BIN:-$ROOT/target/release/dispatchlog}
BASELINE_BIN=$ROOT/target/release/examples/sqlite_baseline

WORK=$(mktemp -d "$TMP_PARENT/dispatchlog-bench.XXXXXX")
cleanup() {
    stop_all_servers
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD_BEFORE=$(load_average)

# --- the server -------------------------------------------------------------------------
make_login
log "starting the server on a fresh database in $WORK"
# shellcheck disable=SC2086 # BENCH_SERVER_ARGS is split into arguments on purpose
start_server server "sqlite://$WORK/save.db" ${BENCH_SERVER_ARGS:-}
ADDR=$SERVER_ADDR

log "warm-up: ${WARMUP}s, $CONNS connections"
wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 10s -s "$ROW_SCRIPT" "http://$ADDR" \
    >"$WORK/warmup.txt" 2>&1
grep '^RESULT' "$WORK/warmup.txt" >&2 || true

log "measuring: ${SECONDS_RUN}s, $THREADS threads, $CONNS connections"
SERVER_CPU_BEFORE=$(cpu_seconds "$SERVER_PID")
T0=$(date +%s.%N)
# `times` in the subshell reports the CPU time of its reaped children, i.e. of wrk.
run_wrk "$WORK/wrk" "$SECONDS_RUN" "$CONNS" "$THREADS" "$ADDR" "$ROW_SCRIPT"
T1=$(date +%s.%N)
SERVER_CPU_AFTER=$(cpu_seconds "$SERVER_PID")
read -r RSS_PEAK_KB RSS_NOW_KB < <(rss_kb "$SERVER_PID")
LOAD_AFTER=$(load_average)
cat "$WORK/wrk.txt" >&2
head -5 "$WORK/wrk.err" >&2 || true

WRK_CPU=$(times_children_seconds "$WORK/wrk.times")

log "stopping the server"
stop_server "$SERVER_PID"
STORED=$(python3 - "$WORK/save.db" <<'PY' 2>/dev/null || echo "?"
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM job_dispatch_log").fetchone()[0])
PY
)
rm -f "$WORK"/save.db*

RESULT=$(grep '^RESULT' "$WORK/wrk.txt" || true)
[ -n "$RESULT" ] || { log "wrk printed no RESULT line"; exit 1; }
field() { result_field "$RESULT" "$1"; }
RPS=$(field rps); P50=$(field p50_ms); P99=$(field p99_ms); NON2XX=$(field non2xx)
SOCKET_ERRORS=$(field socket_errors); REQUESTS=$(field requests); BY_STATUS=$(field non2xx_by_status)

# --- the baselines, same disk (same temporary directory) --------------------------------
BASE_A=; BASE_B=
if [ "$SKIP_BASELINES" != 1 ]; then
    log "baseline (a): one commit per row, ${BASELINE_SECONDS}s"
    BASE_A=$("$BASELINE_BIN" --dir "$WORK" --rows-per-commit 1 --seconds "$BASELINE_SECONDS")
    log "$BASE_A"
    log "baseline (b): 256 rows per commit, ${BASELINE_SECONDS}s"
    BASE_B=$("$BASELINE_BIN" --dir "$WORK" --rows-per-commit 256 --seconds "$BASELINE_SECONDS")
    log "$BASE_B"
fi
rate_of() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F= '$1 == "rows_per_sec" { print $2 }'; }

# --- the table --------------------------------------------------------------------------
awk -v rps="$RPS" -v p50="$P50" -v p99="$P99" -v non2xx="$NON2XX" -v sockerr="$SOCKET_ERRORS" \
    -v requests="$REQUESTS" -v by_status="$BY_STATUS" -v stored="$STORED" \
    -v rss_kb="$RSS_PEAK_KB" -v rss_now_kb="$RSS_NOW_KB" \
    -v scpu0="$SERVER_CPU_BEFORE" -v scpu1="$SERVER_CPU_AFTER" -v wcpu="$WRK_CPU" \
    -v t0="$T0" -v t1="$T1" -v a="$(rate_of "$BASE_A")" -v b="$(rate_of "$BASE_B")" \
    -v conns="$CONNS" -v threads="$THREADS" -v secs="$SECONDS_RUN" -v ncpu="$(nproc)" \
    -v load0="$LOAD_BEFORE" -v load1="$LOAD_AFTER" '
function verdict(ok) { return ok ? "PASS" : "FAIL" }
BEGIN {
    wall = t1 - t0
    scpu = (scpu1 - scpu0) / wall * 100
    wcpu_pct = wcpu / wall * 100
    rss = rss_kb / 1024
    printf "| measure | value | target | result |\n|---|---|---|---|\n"
    printf "| Save throughput (wrk -t%d -c%d, %ds) | %.0f req/s (%d requests, %s rows stored) | | |\n", threads, conns, secs, rps, requests, stored
    printf "| Save latency p50 | %.2f ms | | |\n", p50
    printf "| Save latency p99 | %.2f ms | < 20 ms | %s |\n", p99, verdict(p99 < 20)
    printf "| errors (non-2xx / socket) | %d / %d (%s) | 0 | %s |\n", non2xx, sockerr, by_status, verdict(non2xx == 0 && sockerr == 0)
    printf "| server peak RSS (VmHWM) | %.1f MiB (%.1f MiB at end) | < 100 MiB | %s |\n", rss, rss_now_kb / 1024, verdict(rss < 100)
    printf "| server CPU | %.0f %% of one core | (%d cores) | |\n", scpu, ncpu
    printf "| wrk CPU (load generator) | %.0f %% of one core | (shares the %d cores) | |\n", wcpu_pct, ncpu
    if (a != "" && b != "") {
        printf "| baseline (a) durable upsert, 1 row/commit | %.0f rows/s | | |\n", a
        printf "| baseline (b) durable upsert, 256 rows/commit | %.0f rows/s | | |\n", b
        printf "| Save / (a) | %.2f× | ≥ 2× | %s |\n", rps / a, verdict(rps >= 2 * a)
        printf "| Save / (b) | %.0f %% | ≥ 60 %% | %s |\n", rps / b * 100, verdict(rps >= 0.6 * b)
    }
    printf "| load average before / after | %s / %s | | |\n", load0, load1
}'
