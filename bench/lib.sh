# Shell helpers shared by the benchmarks in bench/ (sourced, not run).
#
# The sourcing script sets BENCH_NAME (for log lines) and WORK (its temporary directory) and
# calls `bench_cleanup` from its exit trap. Everything here talks to 127.0.0.1 only.

log() { echo "[${BENCH_NAME:-bench}] $*" >&2; }

# Installs wrk with apt-get when it is missing.
ensure_wrk() {
    if ! command -v wrk >/dev/null 2>&1; then
        log "wrk not found: installing it with apt-get"
        apt-get update
        apt-get install -y wrk
    fi
}

# The 1, 5 and 15 minute load averages, e.g. "4.73 5.60 3.92".
load_average() { cut -d' ' -f1-3 /proc/loadavg; }

# CPU seconds (user + system) of a live process, from /proc/PID/stat fields 14 and 15.
cpu_seconds() {
    local hz
    hz=$(getconf CLK_TCK)
    # The command name (field 2) may hold spaces: cut after its closing parenthesis.
    sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$hz" '{ printf "%.3f", ($12 + $13) / hz }'
}

# CPU seconds (user + system) of every live process whose command name starts with $1
# (e.g. "postgres": the server and all its backends), plus the CPU of their children already
# reaped (cutime + cstime: a backend that ended moves its CPU into the postmaster's), so the
# difference of two samples also counts connections that ended in between.
cpu_seconds_of_command() {
    local hz
    hz=$(getconf CLK_TCK)
    # A process may end between the glob and the read: cat then fails, which is no error here.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v hz="$hz" -v name="$1" '
        { line = $0; comm = line; sub(/^[0-9]+ \(/, "", comm); sub(/\) .*$/, "", comm)
          if (index(comm, name) != 1) next
          sub(/^.*\) /, "", line); split(line, f, " "); total += f[12] + f[13] + f[14] + f[15] }
        END { printf "%.3f", total / hz }'
}

# Peak and current resident memory of a live process, in KiB: "PEAK NOW".
rss_kb() { awk '/^VmHWM:/ { p = $2 } /^VmRSS:/ { n = $2 } END { print p, n }' "/proc/$1/status"; }

# The processes started by start_server, for bench_cleanup.
SERVER_PIDS=()

# start_server NAME DATABASE_URL [extra args...]: starts the release binary listening on a free
# port of 127.0.0.1, with the admin $LOGIN, logging to $WORK/NAME.log; waits until /health
# answers. Sets SERVER_PID and SERVER_ADDR.
start_server() {
    local name=$1 database=$2
    shift 2
    DISPATCHLOG_ADMIN=$LOGIN "$SERVER_BIN" serve --listen 127.0.0.1:0 \
        --database "$database" --log-format json "$@" 2>"$WORK/$name.log" &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    SERVER_ADDR=
    for _ in $(seq 1 300); do
        SERVER_ADDR=$(grep -o '"address":"[^"]*"' "$WORK/$name.log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
        [ -n "$SERVER_ADDR" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/$name.log" >&2; log "the server $name died"; exit 1; }
        sleep 0.1
    done
    [ -n "$SERVER_ADDR" ] || { log "the server $name did not report its address"; exit 1; }
    for _ in $(seq 1 100); do
        curl -fsS --max-time 2 "http://$SERVER_ADDR/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fsS --max-time 2 "http://$SERVER_ADDR/health" >/dev/null
    log "server $name: pid $SERVER_PID on $SERVER_ADDR is healthy"
}

# stop_server PID: SIGTERM (graceful: finishes requests, closes the database), SIGKILL after 30 s.
stop_server() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Stops every server still running (for the exit trap).
stop_all_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    sleep 1
    for pid in "${SERVER_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# Sums the children's CPU from a file written by `times` ("0m1.234s 0m0.567s" on line 2).
times_children_seconds() {
    sed -n 2p "$1" | awk '{
        n = split($0, parts, " "); total = 0
        for (i = 1; i <= n; i++) { split(parts[i], ms, "m"); sub("s", "", ms[2]); total += ms[1] * 60 + ms[2] }
        printf "%.3f", total }'
}

# run_wrk OUT SECONDS CONNECTIONS THREADS ADDR [lua script]: a wrk run of fixed length with
# --latency; its output goes to OUT.txt / OUT.err, its CPU seconds (from `times` in the
# subshell, i.e. of its reaped child wrk) to OUT.times.
run_wrk() {
    local out=$1 secs=$2 conns=$3 threads=$4 addr=$5 script=${6:-bench/save.lua}
    ( wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$script" \
          "http://$addr" >"$out.txt" 2>"$out.err"; times >"$out.times" )
}

# result_field LINE KEY: the value of KEY=VALUE in a RESULT line of bench/save.lua.
result_field() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }

# metric_value ADDR NAME: the value of one un-labelled series from GET /metrics (0 if absent).
# The API's /metrics needs an admin login: the bench's own (make_login).
metric_value() {
    curl -fsS --max-time 5 -H "Authorization: $DISPATCHLOG_BENCH_AUTH" "http://$1/metrics" 2>/dev/null \
        | awk -v n="$2" '$1 == n { v = $2 } END { print (v == "" ? 0 : v) }'
}

# A fresh admin login and its Basic header: sets LOGIN and exports DISPATCHLOG_BENCH_AUTH.
make_login() {
    PASSWORD=bench-$RANDOM$RANDOM
    LOGIN="bench:$PASSWORD@bench"
    export DISPATCHLOG_BENCH_AUTH="Basic $(printf '%s' "$LOGIN" | base64 -w0)"
}
