#!/usr/bin/env bash
# Speed where users feel it, in one run against the release build on one engine:
#   1. Save of realistic rows (bench/realistic.lua) on an empty database, wrk -c32;
#   2. the first page of a dispatch screen, GET /api/JobDispatchLog?$top=20 (bench/list.lua);
#   3. the full changes pull of every row stored so far, by a client that parses every field of
#      every row into typed rows (examples/changes_pull.rs): one page at a time; overlapped (the
#      next page is asked for while the last is parsed on a second thread); overlapped with
#      Accept-Encoding: gzip; overlapped, parsed into a document tree (a generic client);
#   4. the database filled up to BENCH_BIG_ROWS rows (bench/load_rows.py, SaveMultiple), then
#      the same Save run again: the rate at that size against the rate on the empty database;
#   5. the load generator's ceiling: the same wrk against a server that answers every request
#      with a fixed body of a list page's size (examples/static_answer.rs).
# For each workload: requests/s, p50/p99, and the CPU per request (server user+sys, and on
# PostgreSQL its backends' too, divided by the requests). The server's peak RSS (VmHWM) is read
# after phase 3 (Save, lists, pulls) and at the end. Prints a markdown table with the targets.
#
# Usage: bench/speed.sh sqlite|postgres
# Settings (environment):
#   BENCH_SECONDS=15            each measured wrk run
#   BENCH_WARMUP_SECONDS=3      wrk warm-up before the first Save run (also fills the login cache)
#   BENCH_CONNECTIONS=32        wrk -c
#   BENCH_THREADS=2             wrk -t
#   BENCH_PULL_PASSES=3         passes of each pull (best and median are reported)
#   BENCH_BIG_ROWS=1000000      rows in the table for phase 4 (0 skips it)
#   BENCH_PG=postgres://postgres@127.0.0.1:5432   PostgreSQL server (a database is appended)
#   BENCH_PG_OPTIONS=           query string for the service's URL, e.g. sslmode=disable
#                               (empty: the defaults, sslmode=prefer)
#   BENCH_TMPDIR=${TMPDIR:-/tmp}  parent of the temporary directory
#   BENCH_SKIP_BUILD=0          1: use the binaries already in target/release
#   BENCH_SERVER_BIN=…          another server binary (e.g. an older build, for A/B)
# On PostgreSQL a fresh database dispatchlog_speed_<pid> is created and dropped at the end.
# Everything listens on and talks to 127.0.0.1 only; every load phase has a fixed duration or
# a time limit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

ENGINE=${1:-}
case $ENGINE in
    sqlite | postgres) ;;
    *) echo "usage: bench/speed.sh sqlite|postgres" >&2; exit 2 ;;
esac
SECONDS_RUN=${BENCH_SECONDS:-15}
WARMUP=${BENCH_WARMUP_SECONDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
PULL_PASSES=${BENCH_PULL_PASSES:-3}
BIG_ROWS=${BENCH_BIG_ROWS:-1000000}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
PG_OPTIONS=${BENCH_PG_OPTIONS:-}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
TMP_PARENT=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
DB=dispatchlog_speed_$$

BENCH_NAME=speed.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
ensure_wrk

if [ "$SKIP_BUILD" != 1 ]; then
    log "building the release binary and the examples"
    cargo build --release --quiet
    cargo build --release --quiet --example changes_pull --example static_answer
fi
SERVER_BIN=${BENCH_SERVER_BIN:-$ROOT/target/release/dispatchlog}
PULL_BIN=$ROOT/target/release/examples/changes_pull
STATIC_BIN=$ROOT/target/release/examples/static_answer

WORK=$(mktemp -d "$TMP_PARENT/dispatchlog-speed.XXXXXX")
STATIC_PID=
cleanup() {
    stop_all_servers
    [ -n "$STATIC_PID" ] && kill "$STATIC_PID" 2>/dev/null || true
    if [ "$ENGINE" = postgres ]; then
        psql "$PG/postgres" -qAt -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD_BEFORE=$(load_average)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

if [ "$ENGINE" = postgres ]; then
    psql "$PG/postgres" -qAt -c "CREATE DATABASE $DB" >/dev/null
    DATABASE_URL="$PG/$DB${PG_OPTIONS:+?$PG_OPTIONS}"
else
    DATABASE_URL="sqlite://$WORK/speed.db"
fi

# CPU seconds of the database server's processes (PostgreSQL's backends; nothing on SQLite).
db_cpu() {
    if [ "$ENGINE" = postgres ]; then cpu_seconds_of_command postgres; else echo 0; fi
}

# measure NAME SCRIPT [PATH]: a wrk run of BENCH_SECONDS against the service; appends
# "NAME rps p50 p99 requests non2xx server_cpu db_cpu" to $WORK/results.
measure() {
    local name=$1 script=$2 s0 s1 d0 d1 result
    s0=$(cpu_seconds "$SERVER_PID"); d0=$(db_cpu)
    run_wrk "$WORK/$name" "$SECONDS_RUN" "$CONNS" "$THREADS" "$SERVER_ADDR" "$script"
    s1=$(cpu_seconds "$SERVER_PID"); d1=$(db_cpu)
    result=$(grep '^RESULT' "$WORK/$name.txt" || true)
    [ -n "$result" ] || { cat "$WORK/$name.err" >&2; log "wrk printed no RESULT line for $name"; exit 1; }
    log "$name: $result"
    echo "$name $(result_field "$result" rps) $(result_field "$result" p50_ms) $(result_field "$result" p99_ms)" \
        "$(result_field "$result" requests) $(( $(result_field "$result" non2xx) + $(result_field "$result" socket_errors) ))" \
        "$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')" \
        "$(awk -v a="$d0" -v b="$d1" 'BEGIN { print b - a }')" >>"$WORK/results"
}

make_login
log "engine $ENGINE, database $DATABASE_URL, commit $COMMIT"
start_server server "$DATABASE_URL"

# --- 1. Save on an empty database ------------------------------------------------------
log "warm-up: ${WARMUP}s of Saves"
wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 10s -s bench/realistic.lua \
    "http://$SERVER_ADDR" >"$WORK/warmup.txt" 2>&1
log "1. Save, realistic rows: ${SECONDS_RUN}s, $CONNS connections"
measure save bench/realistic.lua

# --- 2. list-20 -------------------------------------------------------------------------
PAGE_BYTES=$(curl -fsS -H "Authorization: $DISPATCHLOG_BENCH_AUTH" -H 'Accept: application/json' \
    "http://$SERVER_ADDR/api/JobDispatchLog?\$top=20" | wc -c)
log "2. list-20 (a page is $PAGE_BYTES bytes): ${SECONDS_RUN}s"
measure list bench/list.lua

# --- 3. the full changes pull -----------------------------------------------------------
STORED=$(curl -fsS -H "Authorization: $DISPATCHLOG_BENCH_AUTH" \
    "http://$SERVER_ADDR/api/JobDispatchLog?\$top=0&\$count=true" -o /dev/null -D - \
    | awk -F': ' 'tolower($1) == "odata-count" { gsub("\r", "", $2); print $2 }')
log "3. full pull of $STORED rows, $PULL_PASSES passes: one page at a time, overlapped, overlapped with gzip, overlapped into a tree"
pull() {
    local name=$1 s0 s1 d0 d1 t0 t1 out
    shift
    s0=$(cpu_seconds "$SERVER_PID"); d0=$(db_cpu); t0=$(date +%s.%N)
    out=$("$PULL_BIN" --addr "$SERVER_ADDR" --limit 5000 --passes "$PULL_PASSES" \
        --expect "$STORED" --max-seconds 300 "$@")
    t1=$(date +%s.%N); s1=$(cpu_seconds "$SERVER_PID"); d1=$(db_cpu)
    log "$out"
    echo "$name $(printf '%s\n' "$out" | tail -1)" \
        "server_cpu=$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')" \
        "db_cpu=$(awk -v a="$d0" -v b="$d1" 'BEGIN { print b - a }')" \
        "wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" >>"$WORK/pulls"
}
pull plain
pull overlap --overlap
pull gzip --overlap --gzip
pull tree --overlap --tree
read -r RSS_PEAK_KB _ < <(rss_kb "$SERVER_PID")

# --- 4. Save at BENCH_BIG_ROWS rows -----------------------------------------------------
LOADED=
if [ "$BIG_ROWS" -gt "$STORED" ]; then
    log "4. loading $((BIG_ROWS - STORED)) more rows (SaveMultiple) to $BIG_ROWS"
    LOADED=$(timeout 1000 python3 bench/load_rows.py "$SERVER_ADDR" "$((BIG_ROWS - STORED))")
    log "$LOADED"
    log "4. Save at $BIG_ROWS rows: ${SECONDS_RUN}s"
    measure save_big bench/realistic.lua
fi
read -r RSS_END_KB RSS_NOW_KB < <(rss_kb "$SERVER_PID")
stop_server "$SERVER_PID"

# --- 5. the load generator's ceiling ----------------------------------------------------
"$STATIC_BIN" --listen 127.0.0.1:0 --bytes "$PAGE_BYTES" >"$WORK/static.out" 2>&1 &
STATIC_PID=$!
for _ in $(seq 1 50); do grep -q listening "$WORK/static.out" && break; sleep 0.1; done
SERVER_ADDR=$(awk '/listening on/ { print $3 }' "$WORK/static.out")
SERVER_PID=$STATIC_PID
log "5. the load generator's ceiling: a fixed $PAGE_BYTES-byte answer, ${SECONDS_RUN}s"
measure ceiling bench/list.lua
kill "$STATIC_PID" 2>/dev/null || true
LOAD_AFTER=$(load_average)

# --- the table --------------------------------------------------------------------------
pull_field() { awk -v n="$1" -v k="$2" '$1 == n { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$WORK/pulls"; }
awk -v engine="$ENGINE" -v conns="$CONNS" -v threads="$THREADS" -v secs="$SECONDS_RUN" \
    -v page_bytes="$PAGE_BYTES" -v stored="$STORED" -v big="$BIG_ROWS" -v loaded="$LOADED" \
    -v rss_kb="$RSS_PEAK_KB" -v rss_end_kb="$RSS_END_KB" -v rss_now_kb="$RSS_NOW_KB" \
    -v plain_best="$(pull_field plain best_rows_per_sec)" -v plain_median="$(pull_field plain median_rows_per_sec)" \
    -v plain_bytes="$(pull_field plain wire_bytes_per_row)" -v plain_client="$(pull_field plain client_cpu_pct)" \
    -v plain_scpu="$(pull_field plain server_cpu)" -v plain_dcpu="$(pull_field plain db_cpu)" \
    -v over_best="$(pull_field overlap best_rows_per_sec)" -v over_median="$(pull_field overlap median_rows_per_sec)" \
    -v over_client="$(pull_field overlap client_cpu_pct)" \
    -v over_scpu="$(pull_field overlap server_cpu)" -v over_dcpu="$(pull_field overlap db_cpu)" \
    -v gzip_best="$(pull_field gzip best_rows_per_sec)" -v gzip_median="$(pull_field gzip median_rows_per_sec)" \
    -v gzip_bytes="$(pull_field gzip wire_bytes_per_row)" -v gzip_client="$(pull_field gzip client_cpu_pct)" \
    -v gzip_scpu="$(pull_field gzip server_cpu)" -v gzip_dcpu="$(pull_field gzip db_cpu)" \
    -v tree_best="$(pull_field tree best_rows_per_sec)" -v tree_median="$(pull_field tree median_rows_per_sec)" \
    -v tree_client="$(pull_field tree client_cpu_pct)" \
    -v tree_scpu="$(pull_field tree server_cpu)" -v tree_dcpu="$(pull_field tree db_cpu)" \
    -v passes="$PULL_PASSES" -v load0="$LOAD_BEFORE" -v load1="$LOAD_AFTER" -v ncpu="$(nproc)" '
function verdict(ok) { return ok ? "PASS" : "FAIL" }
function per_req(cpu, n) { return n > 0 ? cpu / n * 1e6 : 0 }
FILENAME ~ /results$/ { rps[$1] = $2; p50[$1] = $3; p99[$1] = $4; n[$1] = $5; bad[$1] = $6; scpu[$1] = $7; dcpu[$1] = $8; next }
END {
    list_target = engine == "sqlite" ? 20000 : 8000
    printf "| measure (%s, wrk -t%d -c%d, %d s each) | value | CPU per request (server + database) | target | result |\n", engine, threads, conns, secs
    printf "|---|---|---|---|---|\n"
    printf "| load generator ceiling: fixed %d-byte answer | %.0f req/s, p99 %.2f ms | %.0f µs | (reference) | |\n", page_bytes, rps["ceiling"], p99["ceiling"], per_req(scpu["ceiling"], n["ceiling"])
    printf "| list-20 `GET /api/JobDispatchLog?$top=20` | %.0f req/s (%.0f %% of the ceiling), p50 %.2f ms, p99 %.2f ms | %.0f + %.0f µs | ≥ %d req/s, p99 < 10 ms | %s |\n", rps["list"], rps["list"] / rps["ceiling"] * 100, p50["list"], p99["list"], per_req(scpu["list"], n["list"]), per_req(dcpu["list"], n["list"]), list_target, verdict(rps["list"] >= list_target && p99["list"] < 10 && bad["list"] == 0)
    if (engine == "sqlite") {
        printf "| Save, realistic rows, empty table | %.0f req/s, p50 %.2f ms, p99 %.2f ms | %.0f µs | ≥ 8000 req/s, p99 < 10 ms | %s |\n", rps["save"], p50["save"], p99["save"], per_req(scpu["save"], n["save"]), verdict(rps["save"] >= 8000 && p99["save"] < 10 && bad["save"] == 0)
    } else {
        printf "| Save, realistic rows, empty table | %.0f req/s, p50 %.2f ms, p99 %.2f ms | %.0f + %.0f µs | (bench/pg_save.sh: against pgbench) | |\n", rps["save"], p50["save"], p99["save"], per_req(scpu["save"], n["save"]), per_req(dcpu["save"], n["save"])
    }
    if ("save_big" in rps) {
        printf "| Save at %d rows (%s) | %.0f req/s (%.0f %% of the empty table), p50 %.2f ms, p99 %.2f ms | %.0f + %.0f µs | ≥ 80 %% | %s |\n", big, loaded, rps["save_big"], rps["save_big"] / rps["save"] * 100, p50["save_big"], p99["save_big"], per_req(scpu["save_big"], n["save_big"]), per_req(dcpu["save_big"], n["save_big"]), verdict(rps["save_big"] >= 0.8 * rps["save"] && bad["save_big"] == 0)
    }
    pull_target = engine == "sqlite" ? 200000 : 100000
    printf "| full pull of %d rows, client parses every row into typed rows, one page at a time (best / median of %d) | %.0f / %.0f rows/s, %.0f bytes per row | %.1f + %.1f µs per row; client %.0f %% of a core | ≥ %d rows/s | %s |\n", stored, passes, plain_best, plain_median, plain_bytes, per_req(plain_scpu, stored * passes), per_req(plain_dcpu, stored * passes), plain_client, pull_target, verdict(plain_best >= pull_target)
    printf "| the same pull, parsing overlapped with the next page | %.0f / %.0f rows/s | %.1f + %.1f µs per row; client %.0f %% of a core | ≥ %d rows/s | %s |\n", over_best, over_median, per_req(over_scpu, stored * passes), per_req(over_dcpu, stored * passes), over_client, pull_target, verdict(over_best >= pull_target)
    printf "| the overlapped pull with `Accept-Encoding: gzip` | %.0f / %.0f rows/s, %.0f bytes per row (%.0f %% of plain) | %.1f + %.1f µs per row; client %.0f %% of a core | (reported) | |\n", gzip_best, gzip_median, gzip_bytes, gzip_bytes / plain_bytes * 100, per_req(gzip_scpu, stored * passes), per_req(gzip_dcpu, stored * passes), gzip_client
    printf "| the overlapped pull parsed into a document tree (`serde_json::Value`, a generic client) | %.0f / %.0f rows/s | %.1f + %.1f µs per row; client %.0f %% of a core | (reported) | |\n", tree_best, tree_median, per_req(tree_scpu, stored * passes), per_req(tree_dcpu, stored * passes), tree_client
    printf "| server peak RSS over Save, lists and pulls (VmHWM) | %.1f MiB | | ≤ 64 MiB | %s |\n", rss_kb / 1024, verdict(rss_kb / 1024 <= 64)
    if ("save_big" in rps) printf "| server peak RSS at the end, after the load to %d rows | %.1f MiB (%.1f MiB now) | | | |\n", big, rss_end_kb / 1024, rss_now_kb / 1024
    for (k in bad) if (bad[k] > 0) printf "| errors in %s (non-2xx + socket) | %d | | 0 | FAIL |\n", k, bad[k]
    printf "| load average before / after (%d cores) | %s / %s | | | |\n", ncpu, load0, load1
}' "$WORK/results" /dev/null
