#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster on a free loopback port and prints its URL.
#
#   scripts/pg.sh start DIR   -> prints postgres://drkit@127.0.0.1:PORT/drkit, cluster in DIR
#   scripts/pg.sh stop DIR
#   PG_OWNER_PID=PID scripts/pg.sh start DIR   -> also stops the cluster when PID exits
#   PG_ARCHIVE=1 scripts/pg.sh start DIR   -> archive_mode=on, each finished WAL segment copied
#                                              into $(cat DIR/cluster)/archive (renamed into place
#                                              once whole, so readers never see half a segment)
#   PG_SSL=1 scripts/pg.sh start DIR     -> ssl=on with a fresh CA: DIR/tls/ca.pem signs the server
#                                            certificate (127.0.0.1, localhost) and DIR/tls/client.pem
#                                            (+ client.key, CN=drkit_cert: role drkit_cert logs in
#                                            with it, `cert` auth; role drkit_pw, password
#                                            hunter2, SCRAM); plain connections still work
#   PG_SSL=only scripts/pg.sh start DIR  -> the same, and TCP connections without TLS are refused
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

ensure_openssl() {
  if ! command -v openssl >/dev/null; then
    echo "pg.sh: installing openssl" >&2
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >&2
    else
      sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >&2
    fi
  fi
}

# A CA, a server certificate for 127.0.0.1/localhost and a client certificate in $1 (EC P-256,
# valid 30 days).
make_certs() {
  local t=$1 ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  mkdir -p "$t"
  openssl req -x509 -new "${ec[@]}" -keyout "$t/ca.key" -out "$t/ca.pem" -days 30 \
    -subj "/CN=drkit test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  sign() { # name CN extensions
    openssl req -new "${ec[@]}" -keyout "$t/$1.key" -out "$t/$1.csr" -subj "/CN=$2" 2>/dev/null
    printf '%b' "$3" >"$t/$1.ext"
    openssl x509 -req -in "$t/$1.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
      -out "$t/$1.pem" -days 30 -extfile "$t/$1.ext" 2>/dev/null
    chmod 600 "$t/$1.key"
  }
  sign server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
  sign client drkit_cert "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
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
    ssl_opts=
    if [ -n "${PG_SSL:-}" ]; then
      ensure_openssl
      make_certs "$dir/tls"
      for f in server.pem server.key ca.pem; do cp "$dir/tls/$f" "$real/data/$f"; done
      hba="$real/data/pg_hba.conf"
      # drkit_cert logs in only with a client certificate the CA signed, drkit_pw with the
      # password drkit_pw (SCRAM).
      { echo "hostssl all drkit_cert 127.0.0.1/32 cert"
        echo "hostssl all drkit_pw 127.0.0.1/32 scram-sha-256"
        grep -v '^[[:space:]]*#' "$hba"; } >"$hba.new"
      mv "$hba.new" "$hba"
      if [ "$PG_SSL" = only ]; then sed -i 's/^host\([[:space:]]\)/hostssl\1/' "$hba"; fi
      if [ "$(id -u)" = 0 ]; then chown postgres "$real/data"/{server.pem,server.key,ca.pem,pg_hba.conf}; fi
      chmod 600 "$real/data/server.key"
      ssl_opts="-c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key -c ssl_ca_file=ca.pem"
    fi
    as_owner "$bin/pg_ctl" -D "$real/data" -l "$real/server.log" -w \
      -o "-p $port -k $real -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off $archive_opts $ssl_opts" start >/dev/null
    if [ -n "${PG_SSL:-}" ]; then
      # libpq's default sslmode=prefer negotiates TLS when the server demands it.
      as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U drkit -d postgres -qc "CREATE ROLE drkit_cert LOGIN; CREATE ROLE drkit_pw LOGIN PASSWORD 'hunter2'" >/dev/null
    fi
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U drkit drkit
    if [ -n "${PG_OWNER_PID:-}" ]; then
      # A test binary has no teardown: stop the cluster when the process that asked for it ends.
      script=$(cd "$(dirname "$0")" && pwd)/pg.sh
      # (By the cluster's own directory: a test's DIR is often a temporary directory that is gone
      # before the process ends, and with it DIR/cluster.)
      nohup bash -c "while kill -0 $PG_OWNER_PID 2>/dev/null; do sleep 1; done; '$script' stop-cluster '$real'" \
        >/dev/null 2>&1 &
    fi
    echo "postgres://drkit@127.0.0.1:$port/drkit"
    ;;
  stop)
    real=$(cat "$dir/cluster" 2>/dev/null) || exit 0
    "$0" stop-cluster "$real"
    ;;
  stop-cluster) # the cluster's own directory (/tmp/drkit-pg.*), as the owner watcher knows it
    case "$dir" in /tmp/drkit-pg.*) ;; *) echo "pg.sh: not a cluster directory: $dir" >&2; exit 2 ;; esac
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) echo "usage: pg.sh start|stop DIR" >&2; exit 2 ;;
esac
