#!/usr/bin/env bash
# Checks ./run-local.sh as an operator meets it, on a private state directory
# and free ports: a PostgreSQL that does not start fails it with its error; a
# second stack on the same state directory or ports refuses and leaves the
# first serving; --reset refuses while a stack runs and wipes the state when
# none does; the kernel mock's audit log survives a restart; a stopped stack
# leaves no process behind; a canary (RUN_TESTS=1) that fails prints each
# failed step's HTTP status and body and keeps its working directory.
#   scripts/check-run-local.sh [BUILD_BIN_DIR]
# Ports from AP_CHECK_PORT_BASE (default: a random one from 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
bin=${1:-${AP_BIN_DIR:-build/bin}}
bin=$(cd "$bin" && pwd)
command -v curl >/dev/null || { echo "check-run-local: curl is needed" >&2; exit 2; }

work=$(mktemp -d /tmp/artifact-publisher-check-run-local.XXXXXX)
chmod 755 "$work"
state=$work/state
base=${AP_CHECK_PORT_BASE:-$((20000 + RANDOM % 8000))}
api_port=$(ap_free_port "$base")
kernel_port=$(ap_free_port $((api_port + 1)))
pg_port=$(ap_free_port $((kernel_port + 1)))
api=http://127.0.0.1:$api_port
kernel=http://127.0.0.1:$kernel_port
unset API_BASE_URL KERNEL_URL API_TOKEN RUN_TESTS AP_PG_OPTIONS
export AP_BIN_DIR=$bin ARTIFACT_PUBLISHER_LOCAL_DIR=$state ARTIFACT_PUBLISHER_PORT=$api_port
export ARTIFACT_PUBLISHER_KERNEL_URL=$kernel ARTIFACT_PUBLISHER_LOCAL_PG_PORT=$pg_port

stack=""
cleanup() {
  if [ -n "$stack" ]; then kill -TERM "$stack" 2>/dev/null || true; wait "$stack" 2>/dev/null || true; fi
  scripts/pg.sh stop "$state/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "check-run-local: FAIL $*"
  for f in "$work"/*.out; do [ -f "$f" ] && { echo "--- $(basename "$f")"; cat "$f"; }; done
  exit 1
}
contains() { grep -qF -- "$2" "$1" || fail "$(basename "$1") lacks: $2"; }
http_status() { curl -s -o /dev/null -w '%{http_code}' "$1" || true; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
children_of() { pgrep -P "$1" || true; }

start_stack() {  # start_stack OUT: ./run-local.sh in the background, until it serves
  ./run-local.sh --no-build >"$1" 2>&1 &
  stack=$!
  for _ in $(seq 1 600); do
    grep -q 'Press Ctrl-C to stop' "$1" && return 0
    kill -0 "$stack" 2>/dev/null || fail "run-local.sh exited at start"
    sleep 0.1
  done
  fail "run-local.sh did not serve within 60 s"
}

stop_stack() {  # stops the stack and checks that nothing of it is left
  local procs postmaster rc=0
  procs=$(children_of "$stack")
  postmaster=$(head -n 1 "$state/pg/postmaster.pid")
  [ -n "$procs" ] && [ -n "$postmaster" ] || fail "no processes of the stack found"
  kill -TERM "$stack"
  wait "$stack" || rc=$?
  [ "$rc" = 0 ] || fail "run-local.sh exited $rc on SIGTERM"
  for pid in $procs $postmaster; do
    for _ in $(seq 1 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    [ -e "/proc/$pid" ] && fail "pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline")) outlived its stack"
  done
  for port in "$api_port" "$kernel_port" "$pg_port"; do
    listening "$port" && fail "port $port still listens after the stack stopped"
  done
  [ -e "$state/run-local.pid" ] && fail "run-local.pid outlived its stack"
  stack=""
}

# 1. PostgreSQL does not start: run-local fails with PostgreSQL's own error,
#    and neither migrates nor starts anything.
rc=0
AP_PG_OPTIONS="-c no_such_setting=on" ./run-local.sh --no-build >"$work/pg-fails.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "run-local.sh succeeded although PostgreSQL did not start"
contains "$work/pg-fails.out" 'unrecognized configuration parameter "no_such_setting"'
contains "$work/pg-fails.out" "run-local: PostgreSQL did not start in $state/pg on port $pg_port"
# A default port (PostgreSQL's 5432, run-local's 55432) as a whole number, not
# inside the random one chosen here (25432 holds 5432) nor as the server's
# process id in its log line ("[5432]").
grep -qE '(^|[^0-9[])5?5432([^0-9]|$)' "$work/pg-fails.out" &&
  fail "run-local.sh went on to a default database port"
listening "$api_port" && fail "the service started without a database"
listening "$kernel_port" && fail "the kernel mock started without a database"
[ -e "$state/run-local.pid" ] && fail "a failed start left run-local.pid"
rm "$work/pg-fails.out"

# 2. The first stack serves and says where everything is.
start_stack "$work/first.out"
[ "$(http_status "$api/readyz")" = 200 ] || fail "the first stack's /readyz is not 200"
contains "$work/first.out" "postgresql://artifact_publisher:artifact_publisher@127.0.0.1:$pg_port/artifact_publisher"
contains "$work/first.out" "state               $state"
contains "$work/first.out" "./run-local.sh --reset wipes it"
[ "$(head -n 1 "$state/run-local.pid")" = "$stack" ] || fail "run-local.pid does not name the stack"

# 3. A second stack on the same state directory refuses and names the first.
rc=0
./run-local.sh --no-build >"$work/second.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a second run-local.sh on the same state directory did not refuse"
contains "$work/second.out" "run-local: not starting: a local stack is running from $state (pid $stack, ./run-local.sh)."
contains "$work/second.out" "$api   (health:"
contains "$work/second.out" "kill $stack"
# ... and one on another state directory refuses the ports the first holds.
rc=0
ARTIFACT_PUBLISHER_LOCAL_DIR=$work/other ARTIFACT_PUBLISHER_LOCAL_PG_PORT= \
  ./run-local.sh --no-build >"$work/other.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a second run-local.sh on the first one's ports did not refuse"
contains "$work/other.out" "run-local: not starting: port $api_port on 127.0.0.1 (the service) is in use"
contains "$work/other.out" "ARTIFACT_PUBLISHER_PORT"
[ -e "$work/other/pg" ] && fail "the refused stack initialised a database"
# --reset refuses while the stack runs.
rc=0
./run-local.sh --reset >"$work/reset-running.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "--reset did not refuse while a stack runs"
contains "$work/reset-running.out" "run-local: cannot reset: a local stack is running from $state (pid $stack"
[ -f "$state/pg/PG_VERSION" ] || fail "--reset wiped the database of a running stack"
# The first stack serves on, its database up.
[ "$(http_status "$api/readyz")" = 200 ] || fail "the first stack's /readyz is not 200 after the refusals"
scripts/pg.sh status "$state/pg" >/dev/null || fail "the first stack's PostgreSQL stopped"
rm "$work/second.out" "$work/other.out" "$work/reset-running.out"

# 4. A canary whose checkout is refused (the kernel mock has no /api) prints
#    the status and body of the failed step and keeps its working directory.
rc=0
RUN_TESTS=1 API_BASE_URL=$kernel KERNEL_URL=$kernel ./run-local.sh --no-build >"$work/canary-404.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "the canary passed against an endpoint without /api"
contains "$work/canary-404.out" "FAIL checkout answers 201"
contains "$work/canary-404.out" "POST $kernel/api/checkout answered HTTP 404"
contains "$work/canary-404.out" '"error"'
kept=$(sed -n 's/^smoke: failed; its working directory is kept: //p' "$work/canary-404.out")
[ -n "$kept" ] && [ -f "$kept/order.json" ] || fail "the canary did not keep its working directory"
grep -qF "$(head -c 40 "$kept/order.json")" "$work/canary-404.out" || fail "the printed body is not the answer"
rm -rf "$kept" "$work/canary-404.out"

# 5. A checkout reaches the Kernel; the kernel mock keeps it across a restart.
order=$(curl -s -X POST "$api/api/checkout" -H 'Content-Type: application/json' -H "Idempotency-Key: check-$$" \
  -d '{"customerId":"check-run-local","email":"check@example.com","currency":"usd","items":[{"sku":"artifact-license","quantity":1}]}' \
  | grep -o '"orderId":"[^"]*"' | head -n 1 | cut -d'"' -f4)
[ -n "$order" ] || fail "no checkout on the first stack"
in_kernel() {
  curl -s -X POST "$kernel/kernel/audit/search" -H 'Content-Type: application/json' \
    -d "{\"criteria\":{\"orderId\":\"$order\"},\"eventType\":\"order.completed\"}" | grep -q "\"orderId\":\"$order\""
}
for _ in $(seq 1 50); do in_kernel && break; sleep 0.1; done
in_kernel || fail "the order's audit event did not reach the kernel mock"
keys=$(curl -s "$kernel/kernel/keys")
stop_stack

# 6. A canary against the stopped stack names the connection that failed.
rc=0
RUN_TESTS=1 API_BASE_URL=$api KERNEL_URL=$kernel ./run-local.sh --no-build >"$work/canary-down.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "the canary passed against a stopped stack"
contains "$work/canary-down.out" "POST $api/api/checkout answered HTTP 000 (curl: (7) Failed to connect"
! grep '^ok ' "$work/canary-down.out" || fail "a canary step passed against a stopped stack"
kept=$(sed -n 's/^smoke: failed; its working directory is kept: //p' "$work/canary-down.out")
[ -n "$kept" ] && [ -d "$kept" ] || fail "the canary did not keep its working directory"
rm -rf "$kept" "$work/canary-down.out"

start_stack "$work/restarted.out"
in_kernel || fail "the kernel mock lost its audit log across a restart"
[ "$(curl -s "$kernel/kernel/keys")" = "$keys" ] || fail "the kernel mock signs with another key after a restart"
curl -s "$kernel/kernel/audit/verify" | grep -q '"valid":true' || fail "the kernel mock's restored log does not verify"
stop_stack

# 7. --reset wipes the state when no stack runs; the next stack starts afresh.
./run-local.sh --reset >"$work/reset.out" 2>&1 || fail "--reset failed with no stack running"
contains "$work/reset.out" "run-local: wiped the local state in $state"
[ -e "$state" ] && fail "--reset left $state: $(ls -A "$state")"
rm "$work/reset.out"
echo "run-local: the guard, reset, restart and canary failure output check out"
