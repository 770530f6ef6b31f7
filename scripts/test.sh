#!/usr/bin/env bash
# Every test: Rust tests on SQLite and on a throwaway PostgreSQL, Schemathesis
# against the API, then the Playwright suite in Chromium against the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
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

cargo leptos build --release
(cd end2end && PASSHOOK_BIN="$target_dir/release/passhook" LEPTOS_SITE_ROOT="$PWD/../target/site" npx playwright test)
