#!/usr/bin/env bash
# Starts the built server on a fresh SQLite database with the demo tenant.
set -euo pipefail
port=${1:-3100}
oidc_port=${2:-3102}
here=$(cd "$(dirname "$0")" && pwd)
bin=${PASSHOOK_BIN:-$here/../target/release/passhook}
work=$(mktemp -d /tmp/passhook-e2e.XXXXXX)
cd "$work"
export DATABASE_URL="sqlite://$work/e2e.db"
export PASSHOOK_ADDR="127.0.0.1:$port"
export PASSHOOK_DEMO_PASSWORD="e2e-demo-password"
# Single sign-on against the loopback fake provider (end2end/fakes/oidc.mjs).
export PASSHOOK_OIDC_ISSUER="http://127.0.0.1:$oidc_port"
export PASSHOOK_OIDC_CLIENT_ID="passhook-e2e"
# The Actito fake (end2end/fakes/actito.mjs) listens on loopback, which only the
# operator can open to tenants' settings.
export PASSHOOK_ALLOW_PRIVATE_HOSTS="127.0.0.1"
"$bin" demo >/dev/null
exec "$bin" serve
