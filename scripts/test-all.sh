#!/usr/bin/env bash
# The whole test suite: every test on embedded SQLite, then every test again on PostgreSQL
# (a fresh database per test on the server named by DISPATCHLOG_TEST_POSTGRES).
#
# Outside CI, a machine without a reachable PostgreSQL runs the SQLite half and says clearly that
# the PostgreSQL half was skipped. In CI (CI set) an unreachable PostgreSQL is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${DISPATCHLOG_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"

echo "== tests on SQLite"
env -u DISPATCHLOG_TEST_POSTGRES cargo test "$@"

if pg_isready -q -d "$PG" 2>/dev/null; then
    echo "== tests on PostgreSQL ($PG)"
    DISPATCHLOG_TEST_POSTGRES="$PG" cargo test "$@"
elif [ -n "${CI:-}" ]; then
    echo "PostgreSQL at $PG is not reachable: the PostgreSQL half of the suite cannot run." >&2
    exit 1
else
    echo "SKIPPED: the PostgreSQL half of the suite. PostgreSQL at $PG is not reachable" \
        "(start it, or point DISPATCHLOG_TEST_POSTGRES at one)." >&2
fi
