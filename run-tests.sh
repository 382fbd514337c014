#!/usr/bin/env bash
# Installs what is missing, builds, starts a private PostgreSQL, runs every
# test (labels unit, actor, db, e2e) and stops PostgreSQL again. Exits non-zero
# on any failure. Pass ctest arguments to narrow the run, e.g. `-L unit`.
#
#   AP_SANITIZE=1 ./run-tests.sh   the same suite built with AddressSanitizer
#                                  and UndefinedBehaviorSanitizer (build-asan/);
#                                  any report fails the run
set -euo pipefail
cd "$(dirname "$0")"
source scripts/deps.sh

ap_install_missing
build_dir=build
if [ "${AP_SANITIZE:-0}" = 1 ]; then
  build_dir=build-asan
  ap_build RelWithDebInfo "$build_dir" -DAP_SANITIZE=ON
  # Every process the tests start inherits these. A report stops the process
  # (so its test fails); scripts/ubsan.supp lists what is known and why.
  # Leak detection is off: at exit the service does not yet release the
  # sessions of connections still open (docs/reliability.md).
  export ASAN_OPTIONS=abort_on_error=0:halt_on_error=1:detect_leaks=0:detect_stack_use_after_return=0
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$PWD/scripts/ubsan.supp
else
  # CI builds with AP_WERROR=ON: a warning fails the build.
  ap_build RelWithDebInfo build -DAP_WERROR="${AP_WERROR:-OFF}"
fi

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

ctest --test-dir "$build_dir" --output-on-failure -j2 "$@"
