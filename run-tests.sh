#!/usr/bin/env bash
# Installs what is missing, builds, starts a private PostgreSQL, runs every
# test (labels unit, actor, db, e2e) and stops PostgreSQL again. Exits non-zero
# on any failure. Pass ctest arguments to narrow the run, e.g. `-L unit`.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/deps.sh

ap_install_missing
ap_build

workdir=$(mktemp -d /tmp/artifact-publisher-tests.XXXXXX)
chmod 755 "$workdir"
port=$(ap_free_port 55432)
cleanup() {
  scripts/pg.sh stop "$workdir/pg" || true
  rm -rf "$workdir"
}
trap cleanup EXIT
scripts/pg.sh start "$workdir/pg" "$port" >/dev/null
export AP_TEST_PG_PORT=$port
echo "PostgreSQL for the tests on 127.0.0.1:$port"

ctest --test-dir build --output-on-failure -j2 "$@"
