#!/usr/bin/env bash
# A private PostgreSQL cluster for local runs and tests, owned by the
# `postgres` user when run as root (PostgreSQL refuses to run as root).
#
#   scripts/pg.sh start DIR PORT   initialise DIR if needed, start, create the
#                                  artifact_publisher role and database; prints
#                                  the database URL
#                                  (AP_PG_OPTIONS: extra server options)
#   scripts/pg.sh stop DIR         stop the cluster (fast shutdown)
#   scripts/pg.sh status DIR       exit 0 and print its port when the cluster
#                                  in DIR runs, else exit 1
#   scripts/pg.sh url PORT [DB]    print the URL for PORT (database DB)
#   scripts/pg.sh createdb PORT DB create database DB owned by artifact_publisher
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bindir" ] || { echo "pg.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
  # From / so that the postgres user never starts in a directory it cannot enter.
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

url() {
  echo "postgresql://artifact_publisher:artifact_publisher@127.0.0.1:$1/${2:-artifact_publisher}"
}

psql_admin() {
  local port=$1; shift
  PGOPTIONS="-c client_min_messages=warning" as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

case "${1:-}" in
  start)
    dir=$2 port=$3
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir.initdb.log" 2>&1 \
        || { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    if as_owner "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      running=$(sed -n 4p "$dir/postmaster.pid")
      [ "$running" = "$port" ] \
        || { echo "pg.sh: the cluster in $dir already runs, on port $running, not $port" >&2; exit 1; }
    else
      as_owner "$bindir/pg_ctl" -D "$dir" -w -t 60 -l "$dir/server.log" \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 ${AP_PG_OPTIONS:-}" start >/dev/null \
        || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    fi
    psql_admin "$port" <<'SQL'
SELECT 'CREATE ROLE artifact_publisher LOGIN PASSWORD ''artifact_publisher'' CREATEDB'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'artifact_publisher')\gexec
SELECT 'CREATE DATABASE artifact_publisher OWNER artifact_publisher'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'artifact_publisher')\gexec
SQL
    url "$port"
    ;;
  stop)
    dir=$2
    if [ -f "$dir/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      as_owner "$bindir/pg_ctl" -D "$dir" -w -t 60 -m fast stop >/dev/null
    fi
    ;;
  status)
    dir=$2
    [ -f "$dir/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1 || exit 1
    # The fourth line of postmaster.pid is the port.
    sed -n 4p "$dir/postmaster.pid"
    ;;
  url)
    url "$2" "${3:-}"
    ;;
  createdb)
    port=$2 db=$3
    psql_admin "$port" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\" OWNER artifact_publisher"
    url "$port" "$db"
    ;;
  *)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
