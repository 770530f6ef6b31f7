#!/usr/bin/env bash
# The release build: the `passhook` binary in $CARGO_TARGET_DIR/release and the console
# (WASM, JS, CSS, assets) in target/site. These are the steps `cargo leptos build
# --release` takes for this workspace (Cargo.toml's [[workspace.metadata.leptos]]),
# written out so `make run` and `make test` don't wait for cargo-leptos to compile
# (12 minutes on 2 cores). cargo-leptos remains the optional tool for `cargo leptos
# watch`; both write the same files to the same places.
#
# The WASM and the server build at the same time: each ends in a long single-threaded
# step (the WASM's fat LTO, the server crate itself) that leaves the other core free.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/binaryen/node_modules/.bin:$HOME/.cargo/bin:$PATH"
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
site=target/site
pkg=$site/pkg

# What cargo-leptos exports to both builds (crates may read them when compiling).
export LEPTOS_OUTPUT_NAME=passhook LEPTOS_SITE_ROOT=$site LEPTOS_SITE_PKG_DIR=pkg \
  LEPTOS_SITE_ADDR=127.0.0.1:3000 LEPTOS_RELOAD_PORT=3001 LEPTOS_LIB_DIR=frontend \
  LEPTOS_BIN_DIR=server LEPTOS_JS_MINIFY=true LEPTOS_HASH_FILES=false

front() {
  cargo build --package=frontend --lib --target-dir="$target_dir/front" \
    --target=wasm32-unknown-unknown --no-default-features --profile=wasm-release
  mkdir -p "$pkg"
  wasm-bindgen --target=web --no-typescript --out-name=passhook --out-dir="$pkg" \
    "$target_dir/front/wasm32-unknown-unknown/wasm-release/frontend.wasm"
  # Leptos' hydration script loads /pkg/passhook.wasm.
  mv "$pkg/passhook_bg.wasm" "$pkg/passhook.wasm"
  # Needs Binaryen 116 or newer (scripts/setup.sh): Debian's 108 breaks hydration.
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    "$pkg/passhook.wasm" -o "$pkg/passhook.wasm"
  cp style/main.css "$pkg/passhook.css"
  cp -R public/. "$site/"
}

front &
front_pid=$!
trap 'kill "$front_pid" 2>/dev/null || true' EXIT
cargo build --package=server --bin=passhook --no-default-features --release
wait "$front_pid"
trap - EXIT
echo "build: $target_dir/release/passhook and $site/ ($(du -k "$pkg/passhook.wasm" | cut -f1) KiB of WASM)"
