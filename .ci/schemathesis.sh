#!/usr/bin/env bash
# Fuzzes the running service from its own /openapi.json with Schemathesis: no request the
# document describes may produce a 5xx. Then, informationally, checks that responses conform to
# the documented schemas and statuses.
#
# Usage: bash .ci/schemathesis.sh   (from anywhere; builds the debug binary unless
# DISPATCHLOG_BIN names one). Needs python3 with venv and network access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
VENV="${SCHEMATHESIS_VENV:-$(pwd)/target/schemathesis-venv}"
BIN="${DISPATCHLOG_BIN:-}"

echo "== schemathesis: install"
if [ ! -x "$VENV/bin/schemathesis" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'schemathesis>=4,<5'
fi
"$VENV/bin/schemathesis" --version

if [ -z "$BIN" ]; then
    cargo build --quiet
    BIN=target/debug/dispatchlog
fi

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"

echo "== schemathesis: start $BIN on $BASE"
DISPATCHLOG_ADMIN='admin:secret@acme' "$BIN" serve \
    --listen "127.0.0.1:$PORT" \
    --database "sqlite://$WORK/dispatchlog.db" \
    --log-format json 2>"$WORK/server.log" &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    if curl -fsS "$BASE/health" >/dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fsS "$BASE/health" >/dev/null

# Runs from the temp dir so Schemathesis' example database does not land in the checkout.
run() {
    (cd "$WORK" && timeout 600 "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
        --auth 'admin:secret@acme' \
        --max-examples "$MAX_EXAMPLES" \
        --workers 2 \
        --request-timeout 10 \
        --suppress-health-check all \
        --warnings off \
        "$@")
}

echo "== schemathesis: no server errors"
status=0
run --checks not_a_server_error || status=$?
if [ "$status" -ne 0 ]; then
    echo "-- server errors in the log:"
    grep -E '"level":"(ERROR|WARN)"' "$WORK/server.log" | tail -n 20 || true
    exit "$status"
fi

echo "== schemathesis: response conformance (informational)"
run --checks status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage || echo "-- conformance findings above are reported, not failing"
