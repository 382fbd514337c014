#!/usr/bin/env bash
# Installs what is missing, builds, starts a private PostgreSQL, migrates,
# starts the kernel mock and the service, and serves until Ctrl-C; then stops
# everything it started.
#
#   ./run-local.sh              serve (one stack per state directory)
#   ./run-local.sh --no-build   the same with the binaries already in build/bin:
#                               nothing is installed or built (AP_NO_BUILD=1 too)
#   ./run-local.sh --reset      wipe the local state (database, the kernel mock's
#                               audit log, upgrades and key, logs) while no stack runs
#
# State lives in ARTIFACT_PUBLISHER_LOCAL_DIR (default /tmp/artifact-publisher-local)
# and is kept across runs. A stack that runs from it holds run-local.pid there;
# a second one refuses to start, as it does when a port it needs is taken.
# Ports: ARTIFACT_PUBLISHER_PORT (6137), the port of ARTIFACT_PUBLISHER_KERNEL_URL
# (6050), ARTIFACT_PUBLISHER_LOCAL_PG_PORT (default: the first free from 55432).
#
# RUN_TESTS=1 ./run-local.sh runs the smoke test (scripts/smoke.sh) instead of
# serving: against a private stack of its own, or, with API_BASE_URL (and
# KERNEL_URL) set, against that endpoint, printing the canary order ids.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/deps.sh

usage() { awk 'NR >= 6 && !/^#/ { exit } NR >= 6' "$0" | sed 's/^# \{0,1\}//'; }

build=1
[ "${AP_NO_BUILD:-0}" = 1 ] && build=0
reset=0
for arg in "$@"; do
  case $arg in
    --no-build) build=0 ;;
    --reset) reset=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run-local: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

bin=${AP_BIN_DIR:-build/bin}
state=${ARTIFACT_PUBLISHER_LOCAL_DIR:-/tmp/artifact-publisher-local}
pid_file=$state/run-local.pid
info_file=$state/stack.txt
seed_file=$state/kernel-mock.seed
kernel_state=$state/kernel-audit.jsonl

# The pid of the run-local.sh that runs from $state, if one does.
stack_pid() {
  local pid
  pid=$(head -n 1 "$pid_file" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" != $$ ] || return 1
  # A pid file left by a stack that was killed may name a pid taken since.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'run-local\.sh' || return 1
  echo "$pid"
}

refuse_running() {  # PID WHAT
  {
    echo "run-local: $2: a local stack is running from $state (pid $1, ./run-local.sh)."
    if [ -s "$info_file" ]; then sed 's/^/  /' "$info_file"; else echo "  (still starting)"; fi
    echo "Stop it with Ctrl-C in the shell that runs it, or: kill $1"
    if [ -n "${kernel_port:-}" ]; then
      echo "A second stack beside it needs its own state directory and ports, e.g."
      echo "  ARTIFACT_PUBLISHER_LOCAL_DIR=$state-2 ARTIFACT_PUBLISHER_PORT=$((ARTIFACT_PUBLISHER_PORT + 10))" \
        "ARTIFACT_PUBLISHER_KERNEL_URL=http://127.0.0.1:$((kernel_port + 10)) ./run-local.sh"
    fi
  } >&2
  exit 1
}

# A cluster in $state/pg that runs without a stack: its run-local.sh was killed
# before it could stop it. It is not ours to stop or to share.
refuse_orphan_pg() {  # WHAT
  local port
  port=$(scripts/pg.sh status "$state/pg" 2>/dev/null) || return 0
  {
    echo "run-local: $1: PostgreSQL runs in $state/pg (port $port) without a stack"
    echo "(its ./run-local.sh was killed?). Stop it with: scripts/pg.sh stop $state/pg"
  } >&2
  exit 1
}

if [ "$reset" = 1 ]; then
  if pid=$(stack_pid); then refuse_running "$pid" "cannot reset"; fi
  refuse_orphan_pg "cannot reset"
  if [ ! -d "$state" ]; then
    echo "run-local: nothing to reset in $state"
    exit 0
  fi
  # Only what run-local.sh puts there: the directory may hold other files.
  rm -rf "$state/pg" "$state/pg.initdb.log" "$state/service.log" "$state/kernel-mock.log" \
    "$kernel_state" "$seed_file" "$pid_file" "$info_file"
  rmdir "$state" 2>/dev/null || true
  echo "run-local: wiped the local state in $state (database, kernel mock audit log, upgrades and key, logs)"
  exit 0
fi

if [ "${RUN_TESTS:-}" = 1 ]; then
  if [ "$build" = 1 ]; then
    ap_install_missing
    ap_build
  fi
  exec scripts/smoke.sh
fi

export ARTIFACT_PUBLISHER_PORT=${ARTIFACT_PUBLISHER_PORT:-6137}
export ARTIFACT_PUBLISHER_KERNEL_URL=${ARTIFACT_PUBLISHER_KERNEL_URL:-http://127.0.0.1:6050}
kernel_port=${ARTIFACT_PUBLISHER_KERNEL_URL##*:}
kernel_port=${kernel_port%%/*}

if pid=$(stack_pid); then refuse_running "$pid" "not starting"; fi
refuse_orphan_pg "not starting"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Who listens on PORT, when ss can tell: " by pid N (ARGS), started by pid M (ARGS)".
listener_of() {
  local pid ppid
  command -v ss >/dev/null || return 0
  pid=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
  [ -n "$pid" ] || return 0
  ppid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
  echo " by pid $pid ($(args_of "$pid")), started by pid $ppid ($(args_of "$ppid"))"
}
args_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ $//'; }
refuse_port() {  # PORT WHAT VARIABLE
  {
    echo "run-local: not starting: port $1 on 127.0.0.1 ($2) is in use$(listener_of "$1")."
    echo "Another local stack (from another state directory) or another program listens there."
    echo "Stop it (Ctrl-C in the shell of its ./run-local.sh), or choose another port with $3."
  } >&2
  exit 1
}
port_in_use "$ARTIFACT_PUBLISHER_PORT" && refuse_port "$ARTIFACT_PUBLISHER_PORT" "the service" ARTIFACT_PUBLISHER_PORT
port_in_use "$kernel_port" && refuse_port "$kernel_port" "the kernel mock" ARTIFACT_PUBLISHER_KERNEL_URL
if [ -n "${ARTIFACT_PUBLISHER_LOCAL_PG_PORT:-}" ]; then
  pg_port=$ARTIFACT_PUBLISHER_LOCAL_PG_PORT
  port_in_use "$pg_port" && refuse_port "$pg_port" "PostgreSQL" ARTIFACT_PUBLISHER_LOCAL_PG_PORT
fi

mkdir -p "$state"
chmod 755 "$state"  # the postgres user enters it to reach pg/
# Taken atomically: of two stacks started at once, one gets it.
if ! (set -o noclobber; echo $$ >"$pid_file") 2>/dev/null; then
  if pid=$(stack_pid); then refuse_running "$pid" "not starting"; fi
  rm -f "$pid_file" "$info_file"  # left by a stack that was killed
  (set -o noclobber; echo $$ >"$pid_file")
fi

pids=()
pg_started=0
stop_all() {
  local rc=$?
  trap - INT TERM EXIT
  echo "stopping..." >&2
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ "$pg_started" = 1 ] && { scripts/pg.sh stop "$state/pg" || true; }
  [ "$(head -n 1 "$pid_file" 2>/dev/null)" = $$ ] && rm -f "$pid_file" "$info_file"
  exit "$rc"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

if [ "$build" = 1 ]; then
  ap_install_missing
  ap_build
fi
for tool in artifact-publisher kernel-mock; do
  [ -x "$bin/$tool" ] || { echo "run-local: $bin/$tool is missing: build first (./run-local.sh without --no-build)" >&2; exit 1; }
done

pg_port=${pg_port:-$(ap_free_port 55432)}
pg_started=1
# Not `export X=$(...)`: that would hide a failure of pg.sh behind export's own status.
if ! db_url=$(scripts/pg.sh start "$state/pg" "$pg_port"); then
  echo "run-local: PostgreSQL did not start in $state/pg on port $pg_port (error above; log: $state/pg/server.log)" >&2
  exit 1
fi
export ARTIFACT_PUBLISHER_DB_URL=$db_url
"$bin/artifact-publisher" migrate

# The kernel mock keeps its audit log and upgrades in $kernel_state (the
# file's name is older than its upgrades) and signs with one key
# for the life of the state, so that what it holds and what the service
# recorded of its receipts still verify after a restart.
if [ ! -s "$seed_file" ]; then
  (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$seed_file")
fi
"$bin/kernel-mock" --port "$kernel_port" --state "$kernel_state" --signing-seed "$(cat "$seed_file")" \
  2>>"$state/kernel-mock.log" &
pids+=($!)
"$bin/artifact-publisher" serve 2>>"$state/service.log" &
pids+=($!)

base="http://127.0.0.1:$ARTIFACT_PUBLISHER_PORT"
ready=no
for _ in $(seq 1 300); do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || {
      echo "run-local: a process exited at start; the end of $state/service.log and $state/kernel-mock.log:" >&2
      tail -n 5 "$state/service.log" "$state/kernel-mock.log" >&2
      exit 1
    }
  done
  if curl -s -o /dev/null -w '%{http_code}' "$base/readyz" 2>/dev/null | grep -q 200 && port_in_use "$kernel_port"; then
    ready=yes
    break
  fi
  sleep 0.1
done
[ "$ready" = yes ] || { echo "run-local: $base/readyz did not answer 200 within 30 s; see $state/service.log" >&2; exit 1; }

cat >"$info_file" <<INFO
artifact-publisher  $base   (health: $base/health, ready: $base/readyz, metrics: $base/metrics)
kernel mock         $ARTIFACT_PUBLISHER_KERNEL_URL   (audit log and upgrades: $kernel_state)
PostgreSQL          $ARTIFACT_PUBLISHER_DB_URL   (data: $state/pg)
state               $state   (kept across runs; ./run-local.sh --reset wipes it)
logs                $state/service.log, $state/kernel-mock.log, $state/pg/server.log
INFO
cat "$info_file"
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}" || true
echo "run-local: a process exited unexpectedly; see $state/service.log and $state/kernel-mock.log" >&2
exit 1
