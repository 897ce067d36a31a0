#!/usr/bin/env bash
# Sync-pull benchmark: load N rows (default 100,000) into a fresh SQLite file through the
# release server (SaveMultiple, 1000 rows per request), pull all of them through
# GET /api/JobDispatchLog/Changes?limit=5000 from no cursor until has_more=false
# (examples/changes_pull.rs), stop the server, then read the same rows from the same file
# with a plain SELECT in pages of 5000 in feed order (examples/sqlite_select_baseline.rs).
# Prints a markdown table with the rates, their ratio and PASS/FAIL (target: the feed at least
# half the raw rate).
#
# Settings (environment):
#   BENCH_ROWS=100000           rows loaded and pulled
#   BENCH_ROWS_PER_JOB=2        dispatches per job (the feed fills assigned_user_ids per job)
#   BENCH_PAGE=5000             limit= of the feed and page size of the SELECT
#   BENCH_PASSES=3              full pulls (and SELECT passes); best and median are reported
#   BENCH_TMPDIR=${TMPDIR:-/tmp}  parent of the temporary directory holding the database
#   BENCH_SKIP_BUILD=0          1: use the binaries already in target/release
# Everything listens on and talks to 127.0.0.1 only; every phase is bounded (each pull pass
# gives up after 300 s, the loader after 600 s).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROWS=${BENCH_ROWS:-100000}
ROWS_PER_JOB=${BENCH_ROWS_PER_JOB:-2}
PAGE=${BENCH_PAGE:-5000}
PASSES=${BENCH_PASSES:-3}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
TMP_PARENT=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}

BENCH_NAME=changes.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

if [ "$SKIP_BUILD" != 1 ]; then
    log "building the release binary and the examples"
    cargo build --release --quiet
    cargo build --release --quiet --example changes_pull --example sqlite_select_baseline
fi
SERVER_BIN=$ROOT/target/release/dispatchlog
PULL_BIN=$ROOT/target/release/examples/changes_pull
SELECT_BIN=$ROOT/target/release/examples/sqlite_select_baseline

WORK=$(mktemp -d "$TMP_PARENT/dispatchlog-bench.XXXXXX")
cleanup() {
    stop_all_servers
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD_BEFORE=$(load_average)

# --- the server and the rows ------------------------------------------------------------
make_login
log "starting the server on a fresh database in $WORK"
start_server server "sqlite://$WORK/changes.db"
ADDR=$SERVER_ADDR

log "loading $ROWS rows ($ROWS_PER_JOB per job) with SaveMultiple, 1000 per request"
LOADED=$(timeout 600 python3 - "$ADDR" "$ROWS" "$ROWS_PER_JOB" <<'PY'
import http.client, json, os, sys, time, uuid
addr, total, per_job = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=120)
headers = {"Content-Type": "application/json", "Authorization": os.environ["DISPATCHLOG_BENCH_AUTH"],
           "Prefer": "return=minimal"}
started, done, job = time.monotonic(), 0, None
while done < total:
    batch = []
    for _ in range(min(1000, total - done)):
        if (done + len(batch)) % per_job == 0:
            job = str(uuid.uuid4())
        batch.append({"id": str(uuid.uuid4()), "jobs_id": job, "user_id": str(uuid.uuid4())})
    conn.request("POST", "/api/JobDispatchLog/SaveMultiple", json.dumps(batch), headers)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        sys.exit(f"SaveMultiple: {resp.status} {body[:300]!r}")
    done += len(batch)
print(f"loaded rows={done} seconds={time.monotonic() - started:.3f}")
PY
)
log "$LOADED"

log "pulling every row through /Changes?limit=$PAGE, $PASSES passes"
SERVER_CPU_BEFORE=$(cpu_seconds "$SERVER_PID")
T0=$(date +%s.%N)
PULL=$("$PULL_BIN" --addr "$ADDR" --limit "$PAGE" --passes "$PASSES" --expect "$ROWS" --max-seconds 300)
T1=$(date +%s.%N)
SERVER_CPU_AFTER=$(cpu_seconds "$SERVER_PID")
read -r RSS_PEAK_KB RSS_NOW_KB < <(rss_kb "$SERVER_PID")
log "$PULL"

log "stopping the server"
stop_server "$SERVER_PID"

log "plain SELECT of the same rows from the same file, $PASSES passes"
SELECTED=$("$SELECT_BIN" --db "$WORK/changes.db" --page "$PAGE" --passes "$PASSES" --expect "$ROWS")
log "$SELECTED"
# The same SELECT with the writer's 16 MB page cache instead of the read pool's 2 MB: not the
# target's baseline (the feed's readers have 2 MB), shown to say what a larger cache would give.
log "the same SELECT with a 16 MB page cache, $PASSES passes"
SELECTED16=$("$SELECT_BIN" --db "$WORK/changes.db" --page "$PAGE" --passes "$PASSES" --expect "$ROWS" --cache-kib 16000)
log "$SELECTED16"
LOAD_AFTER=$(load_average)

last_value() { printf '%s\n' "$1" | tail -1 | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }

# --- the table --------------------------------------------------------------------------
awk -v rows="$ROWS" -v per_job="$ROWS_PER_JOB" -v page="$PAGE" -v passes="$PASSES" \
    -v loaded="$(last_value "$LOADED" seconds)" \
    -v pull_best="$(last_value "$PULL" best_rows_per_sec)" \
    -v pull_first="$(last_value "$PULL" first_rows_per_sec)" \
    -v pull_median="$(last_value "$PULL" median_rows_per_sec)" \
    -v client_cpu="$(last_value "$PULL" client_cpu_pct)" \
    -v raw_best="$(last_value "$SELECTED" raw_best_rows_per_sec)" \
    -v raw_median="$(last_value "$SELECTED" raw_median_rows_per_sec)" \
    -v raw16_best="$(last_value "$SELECTED16" raw_best_rows_per_sec)" \
    -v store_best="$(last_value "$SELECTED" store_best_rows_per_sec)" \
    -v store_median="$(last_value "$SELECTED" store_median_rows_per_sec)" \
    -v scpu0="$SERVER_CPU_BEFORE" -v scpu1="$SERVER_CPU_AFTER" -v t0="$T0" -v t1="$T1" \
    -v rss_kb="$RSS_PEAK_KB" -v ncpu="$(nproc)" -v load0="$LOAD_BEFORE" -v load1="$LOAD_AFTER" '
function verdict(ok) { return ok ? "PASS" : "FAIL" }
BEGIN {
    scpu = (scpu1 - scpu0) / (t1 - t0) * 100
    printf "| measure | value | target | result |\n|---|---|---|---|\n"
    printf "| rows (jobs of %d rows), loaded by SaveMultiple | %d in %.1f s | | |\n", per_job, rows, loaded
    printf "| /Changes pull, limit=%d, best of %d passes | %.0f rows/s | | |\n", page, passes, pull_best
    printf "| /Changes pull, first pass / median | %.0f / %.0f rows/s | | |\n", pull_first, pull_median
    printf "| plain SELECT (rusqlite, all columns, pages of %d, the read pool'"'"'s 2 MB page cache), best of %d | %.0f rows/s (median %.0f) | | |\n", page, passes, raw_best, raw_median
    printf "| the same SELECT with a 16 MB page cache, best of %d (for information) | %.0f rows/s; pull / it: %.0f %% | | |\n", passes, raw16_best, pull_best / raw16_best * 100
    printf "| store op `ops::changes` without HTTP, best of %d | %.0f rows/s (median %.0f) | | |\n", passes, store_best, store_median
    printf "| pull / plain SELECT (best / best) | %.0f %% | ≥ 50 %% | %s |\n", pull_best / raw_best * 100, verdict(pull_best >= 0.5 * raw_best)
    printf "| pull / plain SELECT (median / median) | %.0f %% | ≥ 50 %% | %s |\n", pull_median / raw_median * 100, verdict(pull_median >= 0.5 * raw_median)
    printf "| server CPU during the pulls | %.0f %% of one core | (%d cores) | |\n", scpu, ncpu
    printf "| client CPU during the pulls | %.0f %% of one core | | |\n", client_cpu
    printf "| server peak RSS (VmHWM) | %.1f MiB | | |\n", rss_kb / 1024
    printf "| load average before / after | %s / %s | | |\n", load0, load1
}'
