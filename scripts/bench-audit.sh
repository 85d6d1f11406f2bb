#!/usr/bin/env bash
# `drkit audit verify` throughput from PostgreSQL (issue 5 target: >= 200k rows/s), measured
# against the cost of only reading the same rows out with psql (as row_to_json text, and as a
# binary COPY of the columns) to /dev/null in the same run, rounds interleaved.
# See docs/PERFORMANCE.md.
#
#   scripts/bench-audit.sh [ROWS] [ROUNDS]      # default 1000000 rows, 5 rounds
#
# Starts its own throwaway PostgreSQL (scripts/pg.sh), writes an MS5 file audit chain with
# python3's hashlib (an independent writer), and drops everything at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
rounds=${2:-5}

cargo build --release --locked -p drkit >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
drkit="${target_dir:-target}/release/drkit"

work=$(mktemp -d)
chmod 755 "$work"
url=$(PG_OWNER_PID=$$ scripts/pg.sh start "$work/pg")
trap 'scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

psql -q -v ON_ERROR_STOP=1 "$url" -c 'CREATE TABLE audit_log (id bigint PRIMARY KEY,
  "timestamp" timestamptz NOT NULL, actor text, action text, details json,
  "previousHash" text, hash text)'
echo "writing a $rows-entry chain" >&2
python3 - "$rows" <<'PY' | psql -q -v ON_ERROR_STOP=1 "$url" -c 'COPY audit_log FROM STDIN'
import hashlib, json, sys, datetime
n = int(sys.argv[1]); prev = "0"; out = sys.stdout
t0 = datetime.datetime(2026, 11, 20, 8, tzinfo=datetime.timezone.utc)
for i in range(1, n + 1):
    ts = (t0 + datetime.timedelta(milliseconds=1500 * i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    details = json.dumps({"line": "L%d" % (i % 4), "qty": i, "ok": True}, separators=(",", ":"))
    entry = {"id": i, "timestamp": ts, "actor": "operator%d" % (i % 3), "action": "recipe.update",
             "details": json.loads(details), "previousHash": prev}
    text = json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
    h = hashlib.sha256((prev + text).encode()).hexdigest()
    out.write("%d\t%s\t%s\t%s\t%s\t%s\t%s\n" % (i, ts, entry["actor"], entry["action"], details, prev, h))
    prev = h
PY
psql -q "$url" -c 'VACUUM ANALYZE audit_log'

now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }
ref=(); bin=(); sub=()
for r in $(seq 1 "$rounds"); do
  t=$(now)
  psql -q "$url" -c "SET TimeZone='UTC'" -c 'COPY (SELECT row_to_json(t)::text FROM audit_log t ORDER BY t.id) TO STDOUT' >/dev/null
  ref+=("$(calc "$(now) - $t")")
  t=$(now)
  psql -q "$url" -c 'COPY (SELECT * FROM audit_log t ORDER BY t.id) TO STDOUT (FORMAT binary)' >/dev/null
  bin+=("$(calc "$(now) - $t")")
  t=$(now)
  "$drkit" audit verify --db "$url" --table audit_log --format json >"$work/out.json"
  sub+=("$(calc "$(now) - $t")")
  grep -q '"breaks":0' "$work/out.json" || { echo "chain did not verify" >&2; cat "$work/out.json" >&2; exit 1; }
  echo "round $r: row_to_json ${ref[-1]} s, binary ${bin[-1]} s, drkit ${sub[-1]} s" >&2
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mr=$(median "${ref[@]}"); mb=$(median "${bin[@]}"); ms=$(median "${sub[@]}")
echo "rows: $rows, rounds: $rounds"
echo "reference (psql COPY row_to_json to /dev/null), median: $mr s"
echo "reference (psql COPY binary of the columns to /dev/null), median: $mb s"
echo "drkit audit verify, median: $ms s"
echo "drkit rows/s: $(calc "int($rows / $ms)")"
echo "ratio drkit / row_to_json COPY time: $(calc "$ms / $mr")"
echo "ratio drkit / binary COPY time: $(calc "$ms / $mb")"
