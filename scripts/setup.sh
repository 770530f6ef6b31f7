#!/usr/bin/env bash
# Installs what building and testing Passhook needs, skipping what is already there.
#   scripts/setup.sh          what `make run` needs: the release build of scripts/build.sh
#   scripts/setup.sh --test   also what `make test` needs: Chromium, Playwright,
#                             PostgreSQL, and what Schemathesis installs with
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
mode=${1:-}

log() { echo "setup: $*" >&2; }
apt_updated=
apt_install() {
  local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

command -v npm >/dev/null || { log "installing Node.js"; apt_install nodejs npm; }
# The openssl crate (pkpass signatures) builds against the system's OpenSSL.
if ! pkg-config --exists openssl 2>/dev/null; then
  log "installing OpenSSL headers"; apt_install libssl-dev pkg-config
fi
command -v openssl >/dev/null || { log "installing openssl"; apt_install openssl; }
if [ "$mode" = "--test" ]; then
  command -v chromium >/dev/null || { log "installing Chromium"; apt_install chromium; }
  # scripts/schemathesis.sh installs Schemathesis into a virtual environment.
  command -v curl >/dev/null || { log "installing curl"; apt_install curl; }
  python3 -c 'import venv, ensurepip' 2>/dev/null || { log "installing python3-venv"; apt_install python3 python3-venv; }
  if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    log "installing PostgreSQL"; apt_install postgresql
  fi
fi

rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
wbg=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg\$"; then
  log "building wasm-bindgen-cli $wbg (about 4 minutes)"
  cargo install wasm-bindgen-cli --version "$wbg"
fi

# Release builds need wasm-opt 116 or newer: Debian's 108 silently breaks hydration.
# The npm package binaryen@132 ships wasm-opt as a Node program (seconds to install);
# it goes into .tools/ and Makefile, test.sh and CI put its bin first on PATH. The
# 18-minute source build is only the fallback when the npm registry can't be reached.
if [ ! -x .tools/binaryen/node_modules/.bin/wasm-opt ]; then
  log "installing wasm-opt (npm package binaryen@132)"
  mkdir -p .tools/binaryen
  (cd .tools/binaryen && npm install --no-audit --no-fund --loglevel=error --prefix . binaryen@132) || true
fi
export PATH="$PWD/.tools/binaryen/node_modules/.bin:$PATH"
# `|| true`: with no wasm-opt yet, the failed pipeline must not end the script.
v=$(wasm-opt --version 2>/dev/null | sed -n 's/^wasm-opt version \([0-9]*\).*/\1/p' || true)
if [ -z "$v" ] || [ "$v" -lt 116 ]; then
  log "building wasm-opt from source (about 18 minutes): the npm package was not available"
  cargo install wasm-opt --locked
fi

# Again whenever end2end/package-lock.json changes (a stamp holds the one installed).
lock_sum=$(sha256sum end2end/package-lock.json | cut -d' ' -f1)
if [ "$mode" = "--test" ] && [ "$(cat end2end/node_modules/.lock-sum 2>/dev/null)" != "$lock_sum" ]; then
  log "installing Playwright and axe-core (browsers come from Debian's Chromium)"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > end2end/node_modules/.lock-sum
fi
