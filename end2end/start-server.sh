#!/usr/bin/env bash
# Starts the built server on a fresh SQLite database with the demo tenant.
set -euo pipefail
port=${1:-3100}
here=$(cd "$(dirname "$0")" && pwd)
bin=${PASSHOOK_BIN:-$here/../target/release/passhook}
work=$(mktemp -d /tmp/passhook-e2e.XXXXXX)
cd "$work"
export DATABASE_URL="sqlite://$work/e2e.db"
export PASSHOOK_ADDR="127.0.0.1:$port"
export PASSHOOK_DEMO_PASSWORD="e2e-demo-password"
"$bin" demo >/dev/null
exec "$bin" serve
