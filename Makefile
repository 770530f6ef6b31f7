# Passhook: `make run` to try it, `make test` to test everything.
SHELL := /bin/bash
# wasm-opt comes from the npm package binaryen, installed into .tools/ by setup.sh.
export PATH := $(CURDIR)/.tools/binaryen/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
PASSHOOK := $(TARGET_DIR)/release/passhook

.PHONY: run test lint setup setup-test build bench crash

## Install what is missing, build, create the demo tenant and serve on 127.0.0.1:3000.
run: setup
	scripts/build.sh
	$(PASSHOOK) demo
	$(PASSHOOK) serve

## Every test: Rust (SQLite and PostgreSQL) and Playwright (Chromium, release build).
test: setup-test
	scripts/test.sh

## What CI checks besides the tests (cargo-deny is installed here, not by `make run`).
lint: setup
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings
	scripts/deny.sh

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

## The release build: server binary and console (what `cargo leptos build --release` makes).
build: setup
	scripts/build.sh

## Benchmarks (not tests): writes docs/PERFORMANCE.md.
bench:
	@command -v wrk >/dev/null || { sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; $$sudo apt-get install -y -qq wrk; }
	cargo build --release -p server --bin passhook --example bare --example bench_tokens --example bench_wallet --example bench_sse
	python3 scripts/bench.py
	python3 scripts/abuse.py

## The long crash test (CI runs a short one): kill -9 under load on SQLite and on
## PostgreSQL, then three replicas with kills and database restarts. See scripts/crash.py.
crash:
	cargo build -p server --bin passhook
	python3 scripts/crash.py --backend sqlite --duration 120 --kills 10
	python3 scripts/crash.py --backend postgres --duration 120 --kills 10 --db-restarts 2
	python3 scripts/crash.py --backend postgres --replicas 3 --duration 180 --kills 10 --db-restarts 3
