#!/usr/bin/env bash
# Soak harness: M minutes of mixed load against the release build on a fresh SQLite file or a
# fresh PostgreSQL database, sampled every 10 s; prints a markdown table and fails (exit 1) on
# any 5xx, RSS still rising after the first minute, the WAL above its limit, or growing open
# files. The load and the rules are described in examples/soak.rs (its module comment).
#
# Usage: bash bench/soak.sh [MINUTES] [sqlite|postgres]      (defaults: 10 sqlite)
#
# What it does: builds the release binary and examples/soak.rs, starts the server (bench/lib.sh)
# on a fresh database, creates SOAK_TECHNICIANS technician users with `dispatchlog user add`
# (some before the server starts, the rest while it runs), runs the load and sampler, stops the
# server (SIGTERM) and removes the database.
#
# Settings (environment):
#   SOAK_TECHNICIANS=40         technician users (each with its own decision loop and streams)
#   SOAK_STREAMS=300            open /Changes/Stream streams (SOAK_ADMIN_STREAMS of them as admin)
#   SOAK_ADMIN_STREAMS=20
#   SOAK_SAVE_WORKERS=16        concurrent Save loops (no pause: as fast as the server answers)
#   SOAK_LIST_WORKERS=4         concurrent list loops
#   SOAK_FEED_PULLERS=2         /Changes pullers keeping their cursors
#   SOAK_WAL_LIMIT_MIB=1024     the server's --sqlite-wal-limit-mib (its default), and the rule's limit
#   SOAK_DB_MAX_CONNECTIONS=16  the server's --db-max-connections (PostgreSQL: the rule's limit + 1)
#   SOAK_POSTGRES=postgres://postgres@127.0.0.1:5432   server for the postgres engine
#   BENCH_TMPDIR=${TMPDIR:-/tmp}  parent of the temporary directory holding the SQLite file
#   BENCH_SKIP_BUILD=0          1: use the binaries already in target/release
# Everything listens on and talks to 127.0.0.1 only; every load loop ends at the deadline.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

MINUTES=${1:-10}
ENGINE=${2:-sqlite}
TECHNICIANS=${SOAK_TECHNICIANS:-40}
STREAMS=${SOAK_STREAMS:-300}
ADMIN_STREAMS=${SOAK_ADMIN_STREAMS:-20}
SAVE_WORKERS=${SOAK_SAVE_WORKERS:-16}
LIST_WORKERS=${SOAK_LIST_WORKERS:-4}
FEED_PULLERS=${SOAK_FEED_PULLERS:-2}
WAL_LIMIT_MIB=${SOAK_WAL_LIMIT_MIB:-1024}
DB_MAX_CONNECTIONS=${SOAK_DB_MAX_CONNECTIONS:-16}
PG_SERVER=${SOAK_POSTGRES:-postgres://postgres@127.0.0.1:5432}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
TMP_PARENT=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}

BENCH_NAME=soak.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

case "$ENGINE" in
    sqlite | postgres) ;;
    *) log "engine must be sqlite or postgres, not '$ENGINE'"; exit 2 ;;
esac
if ! awk -v m="$MINUTES" 'BEGIN { exit !(m > 0) }'; then
    log "minutes must be a positive number, not '$MINUTES'"
    exit 2
fi

# Every stream and keep-alive connection is a file on both sides (the server inherits this limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((STREAMS * 2 + 1024)) ]; then
    log "open-file limit $NOFILE is too low for $STREAMS streams (raise ulimit -n)"
    exit 2
fi

if [ "$SKIP_BUILD" != 1 ]; then
    log "building the release binary and the soak example"
    cargo build --release --quiet
    cargo build --release --quiet --example soak
fi
SERVER_BIN=$ROOT/target/release/dispatchlog
SOAK_BIN=$ROOT/target/release/examples/soak

WORK=$(mktemp -d "$TMP_PARENT/dispatchlog-soak.XXXXXX")
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
SOAK_ARGS=()
case "$ENGINE" in
    sqlite)
        DB_FILE=$WORK/soak.db
        DATABASE="sqlite://$DB_FILE"
        SOAK_ARGS+=(--sqlite-db "$DB_FILE" --wal-limit-mib "$WAL_LIMIT_MIB")
        ;;
    postgres)
        PG_DB=dispatchlog_soak_$$_$RANDOM
        psql -q "$PG_SERVER/postgres" -c "CREATE DATABASE $PG_DB" >/dev/null
        DATABASE="$PG_SERVER/$PG_DB"
        # The pool's readers plus the writer's connection (README: --db-max-connections).
        SOAK_ARGS+=(--postgres-monitor "$PG_SERVER/postgres" --postgres-db "$PG_DB"
            --pg-max-connections $((DB_MAX_CONNECTIONS + 1)))
        ;;
esac

# Technicians: "username password user_id" lines for the load program.
: >"$WORK/technicians.txt"
add_technician() {
    local i=$1 password user_id
    password=tech-$RANDOM$RANDOM
    user_id=$(cat /proc/sys/kernel/random/uuid)
    "$SERVER_BIN" user add --database "$DATABASE" --domain "$DOMAIN" --username "tech$i" \
        --role technician --user-id "$user_id" --password "$password" >/dev/null
    echo "tech$i $password $user_id" >>"$WORK/technicians.txt"
}
BEFORE=$((TECHNICIANS / 4))
log "creating $BEFORE of $TECHNICIANS technicians before the server starts"
for i in $(seq 1 "$BEFORE"); do add_technician "$i"; done

log "starting the server ($ENGINE) in $WORK"
start_server server "$DATABASE" --sqlite-wal-limit-mib "$WAL_LIMIT_MIB" \
    --db-max-connections "$DB_MAX_CONNECTIONS"

log "creating the other $((TECHNICIANS - BEFORE)) technicians while the server runs"
for i in $(seq $((BEFORE + 1)) "$TECHNICIANS"); do add_technician "$i"; done

log "soak: $MINUTES min on $ENGINE, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(load_average)"
STATUS=0
"$SOAK_BIN" --addr "$SERVER_ADDR" --domain "$DOMAIN" --technicians "$WORK/technicians.txt" \
    --minutes "$MINUTES" --server-pid "$SERVER_PID" --streams "$STREAMS" \
    --admin-streams "$ADMIN_STREAMS" --save-workers "$SAVE_WORKERS" \
    --list-workers "$LIST_WORKERS" --feed-pullers "$FEED_PULLERS" "${SOAK_ARGS[@]}" || STATUS=$?

log "stopping the server"
stop_server "$SERVER_PID"
if grep -q '"level":"ERROR"' "$WORK/server.log"; then
    log "the server logged errors (first five):"
    grep '"level":"ERROR"' "$WORK/server.log" | head -5 >&2
fi
if [ "$STATUS" != 0 ]; then
    log "SOAK FAILED (exit $STATUS): see the lines marked FAIL above"
    exit 1
fi
log "soak passed"
