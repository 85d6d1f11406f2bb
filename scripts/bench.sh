#!/usr/bin/env bash
# drkit's performance targets, measured (see docs/PERFORMANCE.md).
#
# Builds the release `drkit` binary and the `perf` measurement binary (crate drkit-benches), then
# runs `perf`, which generates ~3.3 GiB of partition data in a temp dir (1 GiB single segment,
# 8 x 128 MiB partition, 256 MiB segment, 5 x 128 MiB per codec), warms the page cache, times
# every subject interleaved with its reference, and prints a markdown report on stdout
# (progress on stderr). Needs ~4 GiB free under $TMPDIR (or --data-dir) and as much free RAM for
# the page cache. Takes about 2-3 minutes after the build on 2 cores.
#
#   scripts/bench.sh                      # everything, default 5 rounds
#   scripts/bench.sh --only 1,3 --rounds 9
#   scripts/bench.sh --data-dir target/bench-data --keep   # reuse the generated data next time
#   scripts/bench.sh --scale 16 --rounds 2                 # smoke test on 1/16 of the sizes
#
# Extra arguments go to `perf` (`perf --help`). The criterion benches (moderate sizes, no
# targets) are separate: `cargo bench -p drkit-benches`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p drkit -p drkit-benches >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="${target_dir:-target}/release"

echo "# scripts/bench.sh $*" >&2
exec "$bin/perf" --drkit "$bin/drkit" --quiet-wait 120 "$@"
