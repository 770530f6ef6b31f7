#!/usr/bin/env bash
# Property-based API tests: Schemathesis reads /api/openapi.json of a running
# `passhook serve` and checks that no request gets a 5xx and that every answer (status,
# content type, headers, body) is the one the document promises.
#
#   scripts/schemathesis.sh                 bounded run (CI): a few examples per operation
#   ST_MAX_EXAMPLES=200 scripts/schemathesis.sh   a longer hunt
#
# Environment:
#   PASSHOOK_BIN      the binary to test (default: build target/debug/passhook)
#   ST_MAX_EXAMPLES   examples per operation and phase (default 25)
#   ST_SEED           Hypothesis seed (default: fixed when CI is set, else random; printed
#                     so a failure can be replayed)
#   ST_VENV           where Schemathesis is installed (default ~/.cache/passhook/venv)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
root=$PWD

# The version this suite was written against; newer ones may add checks.
schemathesis_version=4.32.5
venv=${ST_VENV:-$HOME/.cache/passhook/venv}
log() { echo "schemathesis.sh: $*" >&2; }

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q " $schemathesis_version\$"; then
  log "installing schemathesis $schemathesis_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

if [ -z "${PASSHOOK_BIN:-}" ]; then
  cargo build --quiet -p server --bin passhook
  PASSHOOK_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/passhook"
fi

work=$(mktemp -d /tmp/passhook-st.XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DATABASE_URL="sqlite://$work/passhook.db"
export PASSHOOK_ADDR="127.0.0.1:$port"
export PASSHOOK_LOG=${PASSHOOK_LOG:-warn}
# The tenant's Actito settings below name loopback, which only the operator can open.
export PASSHOOK_ALLOW_PRIVATE_HOSTS="127.0.0.1"
base="http://$PASSHOOK_ADDR"

# A tenant with data: the demo (passes, pass types, Apple test credentials)…
"$PASSHOOK_BIN" demo >/dev/null
key=$("$PASSHOOK_BIN" api-key create --tenant demo --name schemathesis \
  --scope ActitoListener.Write --scope Passes.Read --scope Passes.Write \
  --scope Audit.Read --scope Integrations.Write)

"$PASSHOOK_BIN" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; log "the server did not start"; exit 1; }
  sleep 0.2
done

api() { curl -fsS -H "X-API-KEY: $key" -H 'Content-Type: application/json' "$@"; }
# …plus Actito and SFMC settings, so the listeners get past "not configured".
api -X PUT "$base/api/demo/integrations/actito" -d '{"entity":"demo","apiKey":"actito-key",
  "profileTableId":"1","apiBaseUrl":"http://127.0.0.1:9","callbackHosts":["127.0.0.1"]}' >/dev/null
api -X PUT "$base/api/demo/integrations/sfmc" \
  -d '{"signingKeys":[{"id":"k1","secret":"0x000102030405060708090a0b0c0d0e0f"}],"customerKey":"demo-push"}' >/dev/null
pass_id=$(api "$base/api/demo/passes?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
pass_type=$(api "$base/api/demo/pass-types" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

# CI (CI set) uses a fixed seed, so a failure there is reproduced by the same run.
if [ -n "${CI:-}" ]; then seed=${ST_SEED:-20261205}; else seed=${ST_SEED:-$RANDOM$RANDOM}; fi
log "server at $base (pid $server_pid), seed $seed"
started=$SECONDS
export ST_TENANT=demo ST_PASS_ID="$pass_id" ST_PASS_TYPE="$pass_type"
status=0
"$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run "$base/api/openapi.json" \
  --header "X-API-KEY: $key" \
  --checks "${ST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,ignored_auth,negative_data_rejection}" \
  --max-examples "${ST_MAX_EXAMPLES:-25}" \
  --seed "$seed" \
  --workers 2 \
  --request-timeout 10 \
  --report junit --report-dir "$work/report" \
  --no-color || status=$?
log "finished in $((SECONDS - started)) s with status $status"
if [ "$status" != 0 ]; then
  log "server log (last 50 lines):"
  tail -n 50 "$work/server.log" >&2
  mkdir -p "${ST_REPORT_DIR:-$root/target/schemathesis}"
  cp -r "$work/report/." "${ST_REPORT_DIR:-$root/target/schemathesis}/" 2>/dev/null || true
fi
exit "$status"
