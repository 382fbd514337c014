#!/usr/bin/env bash
# Installs what is missing, builds, starts a private PostgreSQL, migrates,
# starts the kernel mock and the service, and serves until Ctrl-C; then stops
# everything it started.
#
# RUN_TESTS=1 ./run-local.sh runs the smoke test (scripts/smoke.sh) instead of
# serving: against the local stack, or, with API_BASE_URL (and KERNEL_URL)
# set, against that endpoint, printing the canary order ids.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/deps.sh

ap_install_missing
ap_build

if [ "${RUN_TESTS:-}" = 1 ]; then
  exec scripts/smoke.sh
fi

state=${ARTIFACT_PUBLISHER_LOCAL_DIR:-/tmp/artifact-publisher-local}
mkdir -p "$state"
chmod 755 "$state"
pg_port=${ARTIFACT_PUBLISHER_LOCAL_PG_PORT:-$(ap_free_port 55432)}
export ARTIFACT_PUBLISHER_PORT=${ARTIFACT_PUBLISHER_PORT:-6137}
export ARTIFACT_PUBLISHER_KERNEL_URL=${ARTIFACT_PUBLISHER_KERNEL_URL:-http://127.0.0.1:6050}
kernel_port=${ARTIFACT_PUBLISHER_KERNEL_URL##*:}
kernel_port=${kernel_port%%/*}

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo "stopping..." >&2
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  scripts/pg.sh stop "$state/pg" || true
  exit 0
}
trap stop_all INT TERM EXIT

export ARTIFACT_PUBLISHER_DB_URL=$(scripts/pg.sh start "$state/pg" "$pg_port")
build/bin/artifact-publisher migrate

build/bin/kernel-mock --port "$kernel_port" 2>>"$state/kernel-mock.log" &
pids+=($!)
build/bin/artifact-publisher serve 2>>"$state/service.log" &
pids+=($!)

base="http://127.0.0.1:$ARTIFACT_PUBLISHER_PORT"
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$ARTIFACT_PUBLISHER_PORT") 2>/dev/null && break
  sleep 0.1
done
cat <<INFO
artifact-publisher  $base   (health: $base/health, metrics: $base/metrics)
kernel mock         $ARTIFACT_PUBLISHER_KERNEL_URL
PostgreSQL          127.0.0.1:$pg_port (data in $state/pg)
logs                $state/service.log, $state/kernel-mock.log
Press Ctrl-C to stop.
INFO
wait -n "${pids[@]}" || true
echo "a process exited unexpectedly; see $state/service.log and $state/kernel-mock.log" >&2
stop_all
