#!/usr/bin/env bash
# cargo deny (advisories, licenses, bans, sources) without network access.
#
# CI cannot reach GitHub, so the RustSec advisory database is a snapshot committed in
# .ci/advisory-db (its crates/ folder, all cargo-deny reads). cargo-deny wants a
# git checkout whose last fetch time it can read; this script lays one out in a
# temporary folder, dated with the snapshot's commit date, and points deny.toml's
# db-path at it.
#
#   scripts/deny.sh                       the check (CI runs it)
#   scripts/deny.sh --refresh <clone>     replaces the snapshot with a newer clone of
#                                         github.com/rustsec/advisory-db
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
snapshot=.ci/advisory-db

if [ "${1:-}" = "--refresh" ]; then
  clone=${2:?usage: scripts/deny.sh --refresh <path of an advisory-db clone>}
  rm -rf "$snapshot/crates"
  git -C "$clone" archive HEAD crates LICENSE.txt | tar -x -C "$snapshot"
  read -r commit date < <(git -C "$clone" log -1 --format='%H %cI')
  cat >"$snapshot/SNAPSHOT" <<EOF
# The RustSec advisory database (github.com/rustsec/advisory-db), crates/ only:
# what cargo-deny reads. Refresh with scripts/deny.sh --refresh <path of a clone>.
commit $commit
date $date
EOF
  echo "deny: snapshot now at $commit ($date)" >&2
  exit 0
fi

# cargo-deny is for lint and CI only: `make run` never builds it.
if ! cargo deny --version 2>/dev/null | grep -q ' 0\.20\.2$'; then
  echo "deny: building cargo-deny 0.20.2 (about 2 to 10 minutes)" >&2
  cargo install cargo-deny@0.20.2 --locked
fi

date=$(sed -n 's/^date //p' "$snapshot/SNAPSHOT")
root=$(mktemp -d /tmp/passhook-advisory-dbs.XXXXXX)
trap 'rm -rf "$root"' EXIT
# The folder name cargo-deny derives from the database's URL (its last segment and
# a hash of the URL).
db="$root/advisory-db-3157b0e258782691"
mkdir -p "$db/.git"
cp -R "$snapshot/crates" "$db/crates"
# cargo-deny takes FETCH_HEAD's modification time as the time of the last fetch.
touch -d "$date" "$db/.git/FETCH_HEAD"

age_days=$(( ($(date +%s) - $(date -d "$date" +%s)) / 86400 ))
# Past 90 days a warning; past 180 days CI fails: advisories that old miss too much.
if [ "$age_days" -gt 180 ]; then
  echo "deny: the advisory snapshot is $age_days days old (limit 180); refresh it (README, \"Dependency policy\")" >&2
  exit 1
elif [ "$age_days" -gt 90 ]; then
  echo "deny: warning: the advisory snapshot is $age_days days old; refresh it (README, \"Dependency policy\")" >&2
fi

# --offline reads every package of the lockfile, other platforms' too: a fresh machine
# fetches the ones it has not (from the Rust package registry, which CI reaches).
cargo fetch --locked --quiet
PASSHOOK_ADVISORY_DBS="$root" cargo deny --offline --log-level warn check "$@"
