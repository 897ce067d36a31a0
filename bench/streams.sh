#!/usr/bin/env bash
# Live-push benchmark: many open /Changes/Stream streams against the release build — what they
# cost an idle server, how fast a Save reaches them, and what they take from Save throughput.
# The phases and their definitions are in examples/streams_bench.rs (its module comment).
#
# Usage: bash bench/streams.sh [sqlite|postgres]      (default: sqlite)
#
# It builds the release binary and the example, creates a fresh SQLite file (or PostgreSQL
# database, dropped afterwards), an admin, a dispatcher and BENCH_TECHNICIANS technicians
# (`dispatchlog user add`), starts the server (and on PostgreSQL a second instance on the same
# database, for Saves across instances), runs the example, prints its markdown table with the
# load average before and after, and stops the servers. Exit 1 when a target is missed.
#
# The servers get --max-streams and --max-connections of BENCH_STREAMS + 2000 (the defaults are
# 10000 each): the streams plus the Save clients' and /metrics' connections must fit.
#
# Settings (environment):
#   BENCH_STREAMS=10000            streams open for (a) idle and (b) latency
#   BENCH_OFFICE_STREAMS=2%        of them as the admin and the dispatcher (see every row)
#   BENCH_TECHNICIANS=200          technicians holding the other streams, spread evenly (the issue's
#                                  scenario, one stream per phone, for phase c alone:
#                                  BENCH_STREAMS=0 BENCH_TECHNICIANS=2000)
#   BENCH_IDLE_SECONDS=30          (a) idle window
#   BENCH_RATE=20                  (b) Saves per second
#   BENCH_LATENCY_SECONDS=20       (b) length of each latency run
#   BENCH_TECHNICIAN_SHARE=0.5     share of Saves dispatched to a technician
#   BENCH_THROUGHPUT_STREAMS=2000  (c) streams open during the loaded throughput runs (0: skip c;
#                                  BENCH_THROUGHPUT_OFFICE_STREAMS (2 %) of them office streams, the
#                                  others technicians'; then again with technicians' streams only)
#   BENCH_THROUGHPUT_SECONDS=15    (c) length of each throughput run
#   BENCH_CONCURRENCY=32           (c) closed-loop Save clients
#   BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432   server for the postgres engine
#   BENCH_TMPDIR=${TMPDIR:-/tmp}   parent of the temporary directory (SQLite file, logs)
#   BENCH_SKIP_BUILD=0             1: use the binaries already in target/release
# Everything listens on and talks to 127.0.0.1 only; every load loop ends at its deadline.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

ENGINE=${1:-sqlite}
STREAMS=${BENCH_STREAMS:-10000}
OFFICE=${BENCH_OFFICE_STREAMS:-$((STREAMS / 50))}
TECHNICIANS=${BENCH_TECHNICIANS:-200}
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-30}
RATE=${BENCH_RATE:-20}
LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-20}
TECHNICIAN_SHARE=${BENCH_TECHNICIAN_SHARE:-0.5}
THROUGHPUT_STREAMS=${BENCH_THROUGHPUT_STREAMS:-2000}
THROUGHPUT_OFFICE=${BENCH_THROUGHPUT_OFFICE_STREAMS:-$((THROUGHPUT_STREAMS / 50))}
THROUGHPUT_SECONDS=${BENCH_THROUGHPUT_SECONDS:-15}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
PG_SERVER=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
TMP_PARENT=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
MOST_STREAMS=$((STREAMS > THROUGHPUT_STREAMS ? STREAMS : THROUGHPUT_STREAMS))
MAX_STREAMS=$((MOST_STREAMS + 2000))

BENCH_NAME=streams.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

case "$ENGINE" in
    sqlite | postgres) ;;
    *) log "engine must be sqlite or postgres, not '$ENGINE'"; exit 2 ;;
esac

# Every stream is a file on both sides (the server and the client inherit this limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((MAX_STREAMS + 1024)) ]; then
    log "open-file limit $NOFILE is too low for $STREAMS streams (raise the hard limit of ulimit -n)"
    exit 2
fi

if [ "$SKIP_BUILD" != 1 ]; then
    log "building the release binary and the example"
    cargo build --release --quiet --bin dispatchlog
    cargo build --release --quiet --example streams_bench
fi
SERVER_BIN=${BENCH_SERVER_BIN:-$ROOT/target/release/dispatchlog}
BENCH_BIN=$ROOT/target/release/examples/streams_bench

WORK=$(mktemp -d "$TMP_PARENT/dispatchlog-streams.XXXXXX")
PG_DB=
cleanup() {
    stop_all_servers
    if [ -n "$PG_DB" ]; then
        psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_login
DOMAIN=${LOGIN##*@}
EXTRA_ARGS=()
case "$ENGINE" in
    sqlite)
        DATABASE="sqlite://$WORK/streams.db"
        ;;
    postgres)
        PG_DB=dispatchlog_streams_$$_$RANDOM
        psql -q "$PG_SERVER/postgres" -c "CREATE DATABASE $PG_DB" >/dev/null
        DATABASE="$PG_SERVER/$PG_DB"
        EXTRA_ARGS+=(--pg-monitor "$PG_SERVER/postgres" --pg-db "$PG_DB")
        ;;
esac

log "creating a dispatcher and $TECHNICIANS technicians"
"$SERVER_BIN" migrate --database "$DATABASE" >/dev/null
DISPATCHER_PASSWORD=disp-$RANDOM$RANDOM
"$SERVER_BIN" user add --database "$DATABASE" --domain "$DOMAIN" --username dispatcher \
    --role dispatcher --password "$DISPATCHER_PASSWORD" >/dev/null
: >"$WORK/technicians.txt"
for i in $(seq 1 "$TECHNICIANS"); do
    password=tech-$RANDOM$RANDOM
    user_id=$(cat /proc/sys/kernel/random/uuid)
    "$SERVER_BIN" user add --database "$DATABASE" --domain "$DOMAIN" --username "tech$i" \
        --role technician --user-id "$user_id" --password "$password" >/dev/null
    echo "tech$i $password $user_id" >>"$WORK/technicians.txt"
done

SERVER_ARGS=(--max-streams "$MAX_STREAMS" --max-connections "$MAX_STREAMS")
start_server a "$DATABASE" "${SERVER_ARGS[@]}"
PID_A=$SERVER_PID
ADDR_A=$SERVER_ADDR
if [ "$ENGINE" = postgres ]; then
    start_server b "$DATABASE" "${SERVER_ARGS[@]}"
    EXTRA_ARGS+=(--other-addr "$SERVER_ADDR")
fi

LOAD_BEFORE=$(load_average)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
log "streams bench on $ENGINE: $STREAMS streams ($OFFICE office), $TECHNICIANS technicians, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $STARTED, load average $LOAD_BEFORE"
STATUS=0
"$BENCH_BIN" --addr "$ADDR_A" --server-pid "$PID_A" --domain "$DOMAIN" \
    --dispatcher "dispatcher:$DISPATCHER_PASSWORD@$DOMAIN" --technicians "$WORK/technicians.txt" \
    --streams "$STREAMS" --office-streams "$OFFICE" --idle-seconds "$IDLE_SECONDS" \
    --rate "$RATE" --latency-seconds "$LATENCY_SECONDS" --technician-share "$TECHNICIAN_SHARE" \
    --throughput-streams "$THROUGHPUT_STREAMS" --throughput-seconds "$THROUGHPUT_SECONDS" \
    --throughput-office-streams "$THROUGHPUT_OFFICE" \
    --concurrency "$CONCURRENCY" "${EXTRA_ARGS[@]}" >"$WORK/table.md" || STATUS=$?
LOAD_AFTER=$(load_average)

echo
echo "Live push on $ENGINE — $STARTED, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); servers with --max-streams $MAX_STREAMS --max-connections $MAX_STREAMS"
echo
cat "$WORK/table.md"
echo
echo "Load average before: $LOAD_BEFORE; after: $LOAD_AFTER (1, 5, 15 min; 2 cores)"

log "stopping the servers"
for pid in "${SERVER_PIDS[@]}"; do stop_server "$pid"; done
for name in a b; do
    if [ -f "$WORK/$name.log" ] && grep -q '"level":"ERROR"' "$WORK/$name.log"; then
        log "server $name logged errors (first five):"
        grep '"level":"ERROR"' "$WORK/$name.log" | head -5 >&2
    fi
done
if [ "$STATUS" != 0 ]; then
    log "a target was missed (exit $STATUS): see the FAIL lines above"
    exit 1
fi
log "every target met"
