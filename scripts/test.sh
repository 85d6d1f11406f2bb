#!/usr/bin/env bash
# The whole test suite, as CI runs it, from a clean checkout.
#
# Needs only the Rust toolchain. The tests of `drkit segments` read real broker-written data from
# ../shared/kafka-real when it exists beside the checkout (DRKIT_KAFKA_REAL overrides the path).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "benchmarks compile"
cargo bench --workspace --locked --no-run

step "fuzz target compiles"
cargo check --manifest-path fuzz/Cargo.toml --locked
