#!/usr/bin/env bash
# PostgreSQL Save benchmark: POST /api/JobDispatchLog/Save of unique rows (wrk +
# bench/realistic.lua: every field of SPEC §2, the realistic mix) against one release instance on a fresh PostgreSQL database, then against two
# instances on the same database (one wrk per instance, half the connections each), then
# `pgbench` running the same single-row upsert the service runs, on the same database (the
# service's schema and indexes, an existing tenant), with as many clients. Prints a markdown
# table with the target of the issue (one instance >= 100 % of the pgbench rate, issue #16) and PASS/FAIL.
#
# Settings (environment):
#   BENCH_ROW=realistic         the row saved: realistic (bench/realistic.lua, the default) or
#                               minimal (bench/save.lua: id, jobs_id and user_id only; an extra)
#   BENCH_SECONDS=20            each measured run (1 instance, 2 instances, pgbench)
#   BENCH_WARMUP_SECONDS=3      wrk warm-up before each HTTP run (also fills the login cache)
#   BENCH_CONNECTIONS=32        wrk -c (split in two for two instances) and pgbench -c
#   BENCH_THREADS=2             wrk -t (1 per wrk for two instances) and pgbench -j
#   BENCH_PG=postgres://postgres@127.0.0.1:5432   server (the database name is appended)
#   BENCH_SKIP_BUILD=0          1: use the binary already in target/release
#   BENCH_SERVER_BIN=…          another server binary (e.g. a copy of an older build, for A/B)
# A fresh database dispatchlog_bench_<pid> is created and dropped at the end. Everything talks
# to 127.0.0.1 only; every load phase has a fixed duration.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

SECONDS_RUN=${BENCH_SECONDS:-20}
WARMUP=${BENCH_WARMUP_SECONDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
DB=dispatchlog_bench_$$

case ${BENCH_ROW:-realistic} in
    realistic) ROW_SCRIPT=bench/realistic.lua ;;
    minimal) ROW_SCRIPT=bench/save.lua ;;
    *) echo "BENCH_ROW must be realistic or minimal" >&2; exit 2 ;;
esac

BENCH_NAME=pg_save.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
ensure_wrk
command -v pgbench >/dev/null || { log "pgbench not found (apt-get install postgresql-contrib)"; exit 1; }

if [ "$SKIP_BUILD" != 1 ]; then
    log "building the release binary"
    cargo build --release --quiet
fi
SERVER_BIN=${BENCH_SERVER_BIN:-$ROOT/target/release/dispatchlog}

psql_admin() { psql "$PG/postgres" -v ON_ERROR_STOP=1 -qtAX "$@"; }
psql_db() { psql "$PG/$DB" -v ON_ERROR_STOP=1 -qtAX "$@"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dispatchlog-bench.XXXXXX")
DB_CREATED=0
cleanup() {
    stop_all_servers
    if [ "$DB_CREATED" = 1 ]; then
        psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql_admin -c "CREATE DATABASE $DB"
DB_CREATED=1
log "created database $DB; synchronous_commit=$(psql_db -c 'SHOW synchronous_commit'), fsync=$(psql_db -c 'SHOW fsync')"

# Samples the writer queue depth of instance ADDR once a second for SECS seconds into FILE.
sample_queue() {
    local addr=$1 secs=$2 file=$3
    for _ in $(seq 1 "$secs"); do
        metric_value "$addr" dispatchlog_sqlite_writer_queue_depth >>"$file"
        sleep 1
    done
}

group_metrics() {
    # "SUM COUNT ONES": group commit jobs, groups, groups of exactly one job.
    echo "$(metric_value "$1" dispatchlog_sqlite_group_commit_size_sum)" \
        "$(metric_value "$1" dispatchlog_sqlite_group_commit_size_count)" \
        "$(metric_value "$1" 'dispatchlog_sqlite_group_commit_size_bucket{le="1"}')"
}

# A row of facts about one instance over a measured run: "avg_group single_share queue_max queue_mean".
instance_facts() {
    local before=$1 after=$2 queue=$3
    read -r s0 c0 o0 <<<"$before"
    read -r s1 c1 o1 <<<"$after"
    awk -v s0="$s0" -v c0="$c0" -v o0="$o0" -v s1="$s1" -v c1="$c1" -v o1="$o1" -v q="$queue" 'BEGIN {
        n = c1 - c0; avg = n > 0 ? (s1 - s0) / n : 0; ones = n > 0 ? (o1 - o0) / n * 100 : 0
        max = 0; sum = 0; k = 0
        while ((getline v < q) > 0) { if (v > max) max = v; sum += v; k++ }
        printf "%.2f %.0f %d %.1f", avg, ones, max, k ? sum / k : 0 }'
}

LOAD0=$(load_average)
make_login

# --- one instance -------------------------------------------------------------------------
start_server a "$PG/$DB"
PID_A=$SERVER_PID; ADDR_A=$SERVER_ADDR
log "warm-up: ${WARMUP}s, $CONNS connections on instance a"
wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 10s -s "$ROW_SCRIPT" "http://$ADDR_A" \
    >"$WORK/warmup1.txt" 2>&1
grep '^RESULT' "$WORK/warmup1.txt" >&2 || true

log "measuring 1 instance: ${SECONDS_RUN}s, $THREADS threads, $CONNS connections"
LOAD1_BEFORE=$(load_average)
G0=$(group_metrics "$ADDR_A")
S0=$(cpu_seconds "$PID_A"); P0=$(cpu_seconds_of_command postgres); T0=$(date +%s.%N)
sample_queue "$ADDR_A" "$SECONDS_RUN" "$WORK/queue1.txt" &
SAMPLER=$!
run_wrk "$WORK/wrk1" "$SECONDS_RUN" "$CONNS" "$THREADS" "$ADDR_A" "$ROW_SCRIPT"
T1=$(date +%s.%N); S1=$(cpu_seconds "$PID_A"); P1=$(cpu_seconds_of_command postgres)
wait "$SAMPLER" || true
G1=$(group_metrics "$ADDR_A")
LOAD1_AFTER=$(load_average)
cat "$WORK/wrk1.txt" >&2
R1=$(grep '^RESULT' "$WORK/wrk1.txt" || true)
[ -n "$R1" ] || { log "wrk printed no RESULT line"; exit 1; }
W1=$(times_children_seconds "$WORK/wrk1.times")
FACTS1=$(instance_facts "$G0" "$G1" "$WORK/queue1.txt")
read -r RSS1_A _ < <(rss_kb "$PID_A")
ONE=$(awk -v s0="$S0" -v s1="$S1" -v p0="$P0" -v p1="$P1" -v t0="$T0" -v t1="$T1" -v w="$W1" \
    'BEGIN { d = t1 - t0; printf "%.0f %.0f %.0f", (s1 - s0) / d * 100, (p1 - p0) / d * 100, w / d * 100 }')

# --- two instances ------------------------------------------------------------------------
start_server b "$PG/$DB"
PID_B=$SERVER_PID; ADDR_B=$SERVER_ADDR
HALF=$((CONNS / 2))
log "warm-up: ${WARMUP}s, $HALF connections on each instance"
wrk -t1 -c"$HALF" -d"${WARMUP}s" --timeout 10s -s "$ROW_SCRIPT" "http://$ADDR_A" >"$WORK/warmup2a.txt" 2>&1 &
WA=$!
wrk -t1 -c"$HALF" -d"${WARMUP}s" --timeout 10s -s "$ROW_SCRIPT" "http://$ADDR_B" >"$WORK/warmup2b.txt" 2>&1
wait "$WA" || true

log "measuring 2 instances: ${SECONDS_RUN}s, 1 thread and $HALF connections per instance"
LOAD2_BEFORE=$(load_average)
GA0=$(group_metrics "$ADDR_A"); GB0=$(group_metrics "$ADDR_B")
SA0=$(cpu_seconds "$PID_A"); SB0=$(cpu_seconds "$PID_B"); P0=$(cpu_seconds_of_command postgres)
T0=$(date +%s.%N)
sample_queue "$ADDR_A" "$SECONDS_RUN" "$WORK/queue2a.txt" &
QA=$!
sample_queue "$ADDR_B" "$SECONDS_RUN" "$WORK/queue2b.txt" &
QB=$!
run_wrk "$WORK/wrk2a" "$SECONDS_RUN" "$HALF" 1 "$ADDR_A" "$ROW_SCRIPT" &
WA=$!
run_wrk "$WORK/wrk2b" "$SECONDS_RUN" "$HALF" 1 "$ADDR_B" "$ROW_SCRIPT"
wait "$WA" || true
T1=$(date +%s.%N)
SA1=$(cpu_seconds "$PID_A"); SB1=$(cpu_seconds "$PID_B"); P1=$(cpu_seconds_of_command postgres)
wait "$QA" "$QB" || true
GA1=$(group_metrics "$ADDR_A"); GB1=$(group_metrics "$ADDR_B")
LOAD2_AFTER=$(load_average)
cat "$WORK/wrk2a.txt" "$WORK/wrk2b.txt" >&2
R2A=$(grep '^RESULT' "$WORK/wrk2a.txt" || true); R2B=$(grep '^RESULT' "$WORK/wrk2b.txt" || true)
[ -n "$R2A" ] && [ -n "$R2B" ] || { log "wrk printed no RESULT line"; exit 1; }
W2=$(awk -v a="$(times_children_seconds "$WORK/wrk2a.times")" -v b="$(times_children_seconds "$WORK/wrk2b.times")" 'BEGIN { print a + b }')
FACTS2A=$(instance_facts "$GA0" "$GA1" "$WORK/queue2a.txt")
FACTS2B=$(instance_facts "$GB0" "$GB1" "$WORK/queue2b.txt")
read -r RSS2_A _ < <(rss_kb "$PID_A")
read -r RSS2_B _ < <(rss_kb "$PID_B")
TWO=$(awk -v a0="$SA0" -v a1="$SA1" -v b0="$SB0" -v b1="$SB1" -v p0="$P0" -v p1="$P1" -v t0="$T0" -v t1="$T1" -v w="$W2" \
    'BEGIN { d = t1 - t0; printf "%.0f %.0f %.0f %.0f", (a1 - a0) / d * 100, (b1 - b0) / d * 100, (p1 - p0) / d * 100, w / d * 100 }')

log "stopping both instances"
stop_server "$PID_A"
stop_server "$PID_B"
STORED=$(psql_db -c "SELECT COUNT(*) FROM job_dispatch_log")

# --- pgbench: the same single-row upsert ------------------------------------------------
TENANT=$(psql_db -c "SELECT id FROM tenant WHERE lower(domain) = 'bench'")
# The service's upsert (PgConn::upsert) with what a Save of a realistic new row writes (the mix
# of bench/realistic.lua): fresh GUIDs, date_create = now in 100 ns ticks, 60 % pending (the
# 1980 date_proceeded), 30 % accepted, 10 % rejected with a reason (20 % workshop rows, never
# rejected), sequence 1-3, and a modified_dateutc unique within the tenant (unique index) that
# grows like the service's stamps: microseconds * 100 + the pgbench client id; and the row's
# assigned_user_ids as a new job's first row carries it (its own user_id unless rejected).
cat >"$WORK/upsert.sql" <<SQL
\set draw random(1, 100)
\set workshop random(1, 5)
\set sequence random(1, 3)
INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
     date_proceeded, is_accepted, is_rejected, rejected_reason, sys_logical_delete,
     is_workshop, modified_dateutc, sequence, assigned_user_ids)
 VALUES ($TENANT, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),
     (extract(epoch FROM clock_timestamp()) * 10000000)::bigint,
     CASE WHEN :draw > 60 THEN (extract(epoch FROM clock_timestamp()) * 10000000)::bigint
          ELSE 3155328000000000 END,
     :draw > 60 AND (:draw <= 90 OR :workshop = 1), :draw > 90 AND :workshop <> 1,
     CASE WHEN :draw > 90 AND :workshop <> 1
          THEN 'Missing part: compressor relay, ordered from the warehouse' ELSE '' END,
     false, :workshop = 1,
     (extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 100 + :client_id, :sequence,
     CASE WHEN :draw > 90 AND :workshop <> 1 THEN ''
          ELSE gen_random_uuid()::text END)
 ON CONFLICT (tenant_id, id) DO UPDATE SET
     jobs_id = EXCLUDED.jobs_id, user_id = EXCLUDED.user_id,
     date_create = EXCLUDED.date_create, date_proceeded = EXCLUDED.date_proceeded,
     is_accepted = EXCLUDED.is_accepted, is_rejected = EXCLUDED.is_rejected,
     rejected_reason = EXCLUDED.rejected_reason,
     sys_logical_delete = EXCLUDED.sys_logical_delete,
     is_workshop = EXCLUDED.is_workshop, modified_dateutc = EXCLUDED.modified_dateutc,
     sequence = EXCLUDED.sequence;
SQL
log "pgbench warm-up: ${WARMUP}s"
pgbench -n -M prepared -c"$CONNS" -j"$THREADS" -T"$WARMUP" -f "$WORK/upsert.sql" "$PG/$DB" >"$WORK/pgwarm.txt" 2>&1 \
    || { log "pgbench warm-up failed:"; tail -20 "$WORK/pgwarm.txt" >&2; exit 1; }
log "pgbench: ${SECONDS_RUN}s, $CONNS clients, $THREADS threads, prepared statements"
LOAD3_BEFORE=$(load_average)
mkdir -p "$WORK/pglog"
P0=$(cpu_seconds_of_command postgres); T0=$(date +%s.%N)
PGBENCH_RC=0
( cd "$WORK/pglog" && { pgbench -n -M prepared -c"$CONNS" -j"$THREADS" -T"$SECONDS_RUN" -l \
      -f "$WORK/upsert.sql" "$PG/$DB" >"$WORK/pgbench.txt" 2>"$WORK/pgbench.err" || exit $?; }
  times >"$WORK/pgbench.times" ) || PGBENCH_RC=$?
if [ "$PGBENCH_RC" != 0 ]; then
    log "pgbench failed (exit $PGBENCH_RC):"
    head -20 "$WORK/pgbench.err" >&2
    cat "$WORK/pgbench.txt" >&2
    exit 1
fi
T1=$(date +%s.%N); P1=$(cpu_seconds_of_command postgres)
LOAD3_AFTER=$(load_average)
cat "$WORK/pgbench.txt" >&2
TPS=$(awk '/^tps = / { print $3; exit }' "$WORK/pgbench.txt")
PG_FAILED=$(awk '/number of failed transactions/ { print $5; exit }' "$WORK/pgbench.txt")
# Per-transaction logs: the third field is the latency in microseconds.
read -r PG_P50 PG_P99 < <(cat "$WORK"/pglog/pgbench_log.* | awk '{ print $3 }' | sort -n | awk '
    { v[NR] = $1 }
    END { i = int(NR * 0.5); if (i < 1) i = 1; j = int(NR * 0.99); if (j < 1) j = 1
          printf "%.3f %.3f\n", v[i] / 1000, v[j] / 1000 }')
PGB=$(awk -v p0="$P0" -v p1="$P1" -v t0="$T0" -v t1="$T1" -v w="$(times_children_seconds "$WORK/pgbench.times")" \
    'BEGIN { d = t1 - t0; printf "%.0f %.0f", (p1 - p0) / d * 100, w / d * 100 }')
LOAD_END=$(load_average)

# --- the table --------------------------------------------------------------------------
f() { result_field "$1" "$2"; }
read -r SCPU1 PCPU1 WCPU1 <<<"$ONE"
read -r SCPU2A SCPU2B PCPU2 WCPU2 <<<"$TWO"
read -r PGCPU3 BCPU3 <<<"$PGB"
read -r AVG1 ONES1 QMAX1 QMEAN1 <<<"$FACTS1"
read -r AVG2A ONES2A QMAX2A QMEAN2A <<<"$FACTS2A"
read -r AVG2B ONES2B QMAX2B QMEAN2B <<<"$FACTS2B"
RPS1=$(f "$R1" rps); RPS2=$(awk -v a="$(f "$R2A" rps)" -v b="$(f "$R2B" rps)" 'BEGIN { print a + b }')
P99_2=$(awk -v a="$(f "$R2A" p99_ms)" -v b="$(f "$R2B" p99_ms)" 'BEGIN { print (a > b ? a : b) }')
P50_2="$(f "$R2A" p50_ms) / $(f "$R2B" p50_ms)"
ERR1="$(f "$R1" non2xx) / $(f "$R1" socket_errors)"
ERR2="$(( $(f "$R2A" non2xx) + $(f "$R2B" non2xx) )) / $(( $(f "$R2A" socket_errors) + $(f "$R2B" socket_errors) ))"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a / b * 100 }'; }
verdict() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { print (a >= t * b ? "PASS" : "FAIL") }'; }

cat <<TABLE
| measure | 1 instance | 2 instances | pgbench (single-row upsert) |
|---|---|---|---|
| throughput | $(printf '%.0f' "$RPS1") Save/s | $(printf '%.0f' "$RPS2") Save/s (sum) | $(printf '%.0f' "$TPS") tps |
| connections / clients | wrk -t$THREADS -c$CONNS | 2 × wrk -t1 -c$HALF | pgbench -c$CONNS -j$THREADS -M prepared |
| latency p50 | $(f "$R1" p50_ms) ms | $P50_2 ms (a / b) | $PG_P50 ms |
| latency p99 | $(f "$R1" p99_ms) ms | $P99_2 ms (worse of a, b) | $PG_P99 ms |
| errors (non-2xx / socket; pgbench failed tx) | $ERR1 | $ERR2 | ${PG_FAILED:-0} |
| server peak RSS (VmHWM) | $(mib "$RSS1_A") MiB | a $(mib "$RSS2_A") / b $(mib "$RSS2_B") MiB | |
| server CPU (% of one core) | $SCPU1 % | a $SCPU2A % + b $SCPU2B % | |
| load generator CPU | wrk $WCPU1 % | wrk $WCPU2 % | pgbench $BCPU3 % |
| PostgreSQL CPU (all postgres processes) | $PCPU1 % | $PCPU2 % | $PGCPU3 % |
| group commit: mean jobs per group / groups of 1 job | $AVG1 / $ONES1 % | a $AVG2A / $ONES2A %, b $AVG2B / $ONES2B % | |
| writer queue depth, max / mean of 1 s samples | $QMAX1 / $QMEAN1 | a $QMAX2A / $QMEAN2A, b $QMAX2B / $QMEAN2B | |
| load average before / after | $LOAD1_BEFORE / $LOAD1_AFTER | $LOAD2_BEFORE / $LOAD2_AFTER | $LOAD3_BEFORE / $LOAD3_AFTER |

| ratio | value | target | result |
|---|---|---|---|
| 1 instance / pgbench | $(pct "$RPS1" "$TPS") % | ≥ 100 % | $(verdict "$RPS1" "$TPS" 1.0) |
| 2 instances / pgbench | $(pct "$RPS2" "$TPS") % | | |
| 2 instances / 1 instance | $(pct "$RPS2" "$RPS1") % | | |

Rows stored by the service runs: $STORED. Load average at start / end: $LOAD0 / $LOAD_END.
TABLE
