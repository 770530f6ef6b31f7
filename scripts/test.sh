#!/usr/bin/env bash
# Every test: Rust tests on SQLite and on a throwaway PostgreSQL, Schemathesis
# against the API, then the Playwright suite in Chromium against the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/binaryen/node_modules/.bin:$HOME/.cargo/bin:$PATH"
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

pgdir=$(mktemp -d /tmp/passhook-pg.XXXXXX)
trap 'scripts/pg.sh stop "$pgdir"' EXIT
TEST_DATABASE_URL=$(scripts/pg.sh start "$pgdir")
export TEST_DATABASE_URL
echo "test: PostgreSQL at $TEST_DATABASE_URL"

# Default members only: the WASM entry point would unify `hydrate` into the server build.
cargo test

# The OpenAPI document against the server (bounded: about a minute). `cargo test`
# built this binary already.
PASSHOOK_BIN="$target_dir/debug/passhook" scripts/schemathesis.sh

# Crash test, short form (`make crash` runs the long one): kill -9 mid-run on each
# backend, then three replicas on one PostgreSQL with a replica killed and the
# database restarted. Uses the debug binary `cargo test` just built.
export PASSHOOK_BIN="$target_dir/debug/passhook"
python3 scripts/crash.py --backend sqlite --duration 20 --kills 3
python3 scripts/crash.py --backend postgres --database-url "$TEST_DATABASE_URL" --duration 20 --kills 3
python3 scripts/crash.py --backend postgres --database-url "$TEST_DATABASE_URL" --pg-dir "$pgdir" \
  --replicas 3 --duration 25 --kills 2 --db-restarts 1
unset PASSHOOK_BIN

scripts/build.sh
(cd end2end && PASSHOOK_BIN="$target_dir/release/passhook" LEPTOS_SITE_ROOT="$PWD/../target/site" npx playwright test)
echo "test: Rust tests ran on SQLite and on PostgreSQL ($TEST_DATABASE_URL); Playwright on the release build (SQLite)"
