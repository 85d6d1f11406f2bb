#!/usr/bin/env bash
# `drkit replay --segments` throughput (issue 3 target: >= 0.9 x psql's `\copy ... (FORMAT
# binary)` of the same rows from a file, the server's own limit), into an unindexed wide table
# and into the MS5 wide table with its (asset_id, timestamp DESC) index, rounds interleaved so
# both sides see the same machine. See docs/PERFORMANCE.md.
#
#   scripts/bench-replay.sh [ROUNDS] [SEGMENTS]   # default 5 rounds, 4 x 16 MiB snappy segments
#
# Starts its own throwaway PostgreSQL (scripts/pg.sh). The reference file is the table's own
# binary COPY after a first replay, so both sides load exactly the same rows.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
segments=${2:-4}

cargo build --profile bench --locked -p drkit -p drkit-testdata >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
drkit="${target_dir:-target}/release/drkit"
gen="${target_dir:-target}/release/gen-testdata"

work=$(mktemp -d)
chmod 755 "$work"
url=$(PG_OWNER_PID=$$ scripts/pg.sh start "$work/pg")
trap 'scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

"$gen" bench --out "$work/data/telemetry-0" --segment-bytes 16777216 --segments "$segments" \
  --codec snappy --batch-records 500 >&2
psql -q -v ON_ERROR_STOP=1 "$url" -c "
  CREATE TABLE plain (\"timestamp\" timestamptz, asset_id uuid, temperature float8,
    pressure float8, vibration float8, speed float8, metadata jsonb);
  CREATE TABLE ms5 (LIKE plain);
  CREATE INDEX ON ms5 (asset_id, \"timestamp\" DESC);
  CREATE TABLE ref_plain (LIKE plain);
  CREATE TABLE ref_ms5 (LIKE plain);
  CREATE INDEX ON ref_ms5 (asset_id, \"timestamp\" DESC);"
"$drkit" replay --segments "$work/data" --db "$url" --table plain --mapping ms5-telemetry \
  --no-progress --no-gaps >&2
psql -q -v ON_ERROR_STOP=1 "$url" -c "\\copy plain TO '$work/rows.bin' (FORMAT binary)"
rows=$(psql -qtA "$url" -c 'SELECT count(*) FROM plain')
echo "$rows rows, $(du -m "$work/rows.bin" | cut -f1) MB of binary COPY data" >&2

now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }
reset() { psql -q "$url" -c "TRUNCATE $1; DELETE FROM drkit_replay_progress; CHECKPOINT"; }
replay() { # table [extra flags]
  local table=$1
  shift
  "$drkit" replay --segments "$work/data" --db "$url" --table "$table" --mapping ms5-telemetry \
    --batch-rows 200000 --no-progress --format json "$@" >"$work/out.json"
  grep -q "\"rows\":$rows," "$work/out.json" || { echo "replay wrote the wrong rows" >&2; cat "$work/out.json" >&2; exit 1; }
}
declare -A t
for r in $(seq 1 "$rounds"); do
  for table in plain ms5; do
    reset "ref_$table"
    s=$(now); psql -q "$url" -c "\\copy ref_$table FROM '$work/rows.bin' (FORMAT binary)"; e=$(now)
    t[ref_$table]+="$(calc "$e - $s") "
    reset "$table"
    s=$(now); replay "$table" --no-gaps; e=$(now)
    t[drkit_$table]+="$(calc "$e - $s") "
  done
  reset plain
  s=$(now); replay plain; e=$(now)
  t[drkit_gaps]+="$(calc "$e - $s") "
  echo "round $r" >&2
  for k in ref_plain drkit_plain ref_ms5 drkit_ms5 drkit_gaps; do
    echo "  $k: ${t[$k]}" >&2
  done
done
median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A m
for k in ref_plain drkit_plain ref_ms5 drkit_ms5 drkit_gaps; do
  m[$k]=$(median "${t[$k]}")
done
echo "rows: $rows, rounds: $rounds, medians in seconds"
echo "unindexed:  psql \\copy binary ${m[ref_plain]}  drkit replay ${m[drkit_plain]}  ratio (copy time / replay time) $(calc "${m[ref_plain]} / ${m[drkit_plain]}")"
echo "MS5 index:  psql \\copy binary ${m[ref_ms5]}  drkit replay ${m[drkit_ms5]}  ratio $(calc "${m[ref_ms5]} / ${m[drkit_ms5]}")"
echo "unindexed with gap tracking (default): drkit replay ${m[drkit_gaps]}  ratio $(calc "${m[ref_plain]} / ${m[drkit_gaps]}")"
echo "drkit rows/s (unindexed, no gaps): $(calc "int($rows / ${m[drkit_plain]})")"
