#!/usr/bin/env bash
# `drkit backup verify` throughput against `sha256sum` on the same 1 GiB files, in the same run,
# rounds interleaved, page cache warm (issue 5 target: >= 0.8 x sha256sum). See
# docs/PERFORMANCE.md.
#
#   scripts/bench-backup.sh [ROUNDS]       # default 5
#
# Files (in a temp dir, removed at the end): 1 GiB of random bytes with a GNU .sha256 sidecar
# (drkit: checksum only), and a ~1 GiB uncompressed pg_dump custom archive (-Z0) of a generated
# table from a throwaway PostgreSQL (scripts/pg.sh) with its sidecar (drkit: checksum plus every
# TOC entry and data block walked).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}

cargo build --release --locked -p drkit >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
drkit="${target_dir:-target}/release/drkit"

work=$(mktemp -d)
chmod 755 "$work"
trap 'scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "writing 1 GiB of random bytes" >&2
head -c $((1 << 30)) /dev/urandom >"$work/random.bin"
(cd "$work" && sha256sum random.bin >random.bin.sha256)

echo "writing a ~1 GiB pg_dump -Fc -Z0 archive" >&2
url=$(PG_OWNER_PID=$$ scripts/pg.sh start "$work/pg")
psql -q -v ON_ERROR_STOP=1 "$url" -c "CREATE TABLE telemetry AS
  SELECT now() - s * interval '1 second' AS ts, md5(s::text)::uuid AS asset_id,
         random() * 100 AS temperature, random() AS pressure, repeat('x', 60) AS note
  FROM generate_series(1, 7500000) s"
/usr/lib/postgresql/15/bin/pg_dump -Fc -Z0 -d "$url" -f "$work/ms5.dump"
(cd "$work" && sha256sum ms5.dump >ms5.dump.sha256)
ls -l "$work/random.bin" "$work/ms5.dump" >&2
cat "$work/random.bin" "$work/ms5.dump" >/dev/null # warm the page cache

now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for f in random.bin ms5.dump; do
  ref=(); sub=()
  for r in $(seq 1 "$rounds"); do
    t=$(now); (cd "$work" && sha256sum -c --quiet "$f.sha256"); ref+=("$(calc "$(now) - $t")")
    t=$(now); "$drkit" backup verify --no-progress "$work/$f" >/dev/null; sub+=("$(calc "$(now) - $t")")
    echo "$f round $r: sha256sum ${ref[-1]} s, drkit ${sub[-1]} s" >&2
  done
  mr=$(median "${ref[@]}"); ms=$(median "${sub[@]}")
  bytes=$(stat -c %s "$work/$f")
  echo "$f ($bytes bytes): sha256sum median $mr s ($(calc "int($bytes / $mr / 1048576)") MiB/s), drkit median $ms s ($(calc "int($bytes / $ms / 1048576)") MiB/s), throughput ratio drkit/sha256sum $(calc "$mr / $ms")"
done
