#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster on a free loopback port and prints its URL.
#
#   scripts/pg.sh start DIR   -> prints postgres://drkit@127.0.0.1:PORT/drkit, cluster in DIR
#   scripts/pg.sh stop DIR
#   PG_OWNER_PID=PID scripts/pg.sh start DIR   -> also stops the cluster when PID exits
#   PG_ARCHIVE=1 scripts/pg.sh start DIR   -> archive_mode=on, each finished WAL segment copied
#                                              into $(cat DIR/cluster)/archive (renamed into place
#                                              once whole, so readers never see half a segment)
#
# Installs Debian's postgresql-15 when the server binaries are missing. initdb refuses to run as
# root, so as root the cluster belongs to the `postgres` user.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?cluster directory}
bin=/usr/lib/postgresql/15/bin

ensure_installed() {
  if [ ! -x "$bin/postgres" ]; then
    echo "pg.sh: installing postgresql-15" >&2
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >&2
    else
      sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >&2
    fi
  fi
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case "$cmd" in
  start)
    ensure_installed
    mkdir -p "$dir"
    # The cluster lives in a directory of its own under /tmp that the `postgres` user can reach
    # even when $dir's parents are private; $dir/cluster points at it.
    real=$(mktemp -d /tmp/drkit-pg.XXXXXX)
    chmod 755 "$real"
    if [ "$(id -u)" = 0 ]; then chown postgres "$real"; fi
    echo "$real" >"$dir/cluster"
    port=$(free_port)
    archive_opts=""
    if [ -n "${PG_ARCHIVE:-}" ]; then
      mkdir -p "$real/archive"
      if [ "$(id -u)" = 0 ]; then chown postgres "$real/archive"; fi
      archive_opts="-c archive_mode=on -c archive_command='test ! -f $real/archive/%f && cp %p $real/archive/%f.tmp && mv $real/archive/%f.tmp $real/archive/%f'"
    fi
    as_owner "$bin/initdb" -D "$real/data" -U drkit --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1
    as_owner "$bin/pg_ctl" -D "$real/data" -l "$real/server.log" -w \
      -o "-p $port -k $real -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off $archive_opts" start >/dev/null
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U drkit drkit
    if [ -n "${PG_OWNER_PID:-}" ]; then
      # A test binary has no teardown: stop the cluster when the process that asked for it ends.
      script=$(cd "$(dirname "$0")" && pwd)/pg.sh
      nohup bash -c "while kill -0 $PG_OWNER_PID 2>/dev/null; do sleep 1; done; '$script' stop '$dir'" \
        >/dev/null 2>&1 &
    fi
    echo "postgres://drkit@127.0.0.1:$port/drkit"
    ;;
  stop)
    real=$(cat "$dir/cluster" 2>/dev/null) || exit 0
    as_owner "$bin/pg_ctl" -D "$real/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$real"
    ;;
  *) echo "usage: pg.sh start|stop DIR" >&2; exit 2 ;;
esac
