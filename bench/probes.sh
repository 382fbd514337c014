#!/usr/bin/env bash
# Probes during checkouts (issue 18): starts a PostgreSQL (synchronous
# commit on), the kernel mock and a Release build of the service, then runs
# POST /api/checkout with wrk at 16 connections twice, after a warm-up:
# alone, and with a flood of open probes (/health and /readyz in turn, about
# 2,000 a second on 8 connections) alongside. Prints checkout throughput and
# p50/p99 of both side by side, the probes' own rate and latency, and the
# database checks and Kernel health calls the probes cost.
#
#   bench/probes.sh                  30 s per step
#   DURATION=10 bench/probes.sh      shorter steps
#   PROBE_DELAY_MS=2 bench/probes.sh a denser flood (pause per connection)
#   PG_PORT=25452 bench/probes.sh    a fresh database on the PostgreSQL
#                                    already listening there, instead of a
#                                    private cluster
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source bench/lib.sh
AP_PACKAGES+=(wrk curl)
ap_install_missing

duration=${DURATION:-30}
export PROBE_DELAY_MS=${PROBE_DELAY_MS:-4}
work=$(mktemp -d /tmp/artifact-publisher-bench.XXXXXX)
chmod 755 "$work"
pids=()
cluster=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -z "$cluster" ] || scripts/pg.sh stop "$cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); steps of ${duration}s"
echo "current: $(git log -1 --format='%h %s' | cut -c1-100)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
bench_build_release . build-release
bin=build-release/bin

if [ -n "${PG_PORT:-}" ]; then
  db_url=$(scripts/pg.sh createdb "$PG_PORT" ap_bench_probes)
else
  pg_port=$(ap_free_port $((20000 + RANDOM % 8000)))
  cluster=$work/pg
  db_url=$(scripts/pg.sh start "$cluster" "$pg_port")
fi
kernel_port=$(ap_free_port $((20000 + RANDOM % 8000)))
port=$(ap_free_port $((kernel_port + 1)))
export ARTIFACT_PUBLISHER_DB_URL=$db_url ARTIFACT_PUBLISHER_PORT=$port
export ARTIFACT_PUBLISHER_KERNEL_URL=http://127.0.0.1:$kernel_port ARTIFACT_PUBLISHER_LOG_LEVEL=warn
"$bin/artifact-publisher" migrate >/dev/null
bench_start "$bin" "$kernel_port" "$work/kernel.log" "$work/service.log"

# What the probes cost: the database's readiness checks and the Kernel
# health calls made so far.
probe_calls() {
  curl -s "http://127.0.0.1:$port/metrics" | awk '
    /^ap_db_status_checks_total / {db = $2}
    /^ap_kernel_calls_total\{call="health"/ {kernel += $2}
    END {printf "%d %d", db, kernel}'
}

checkouts() {  # LABEL: one step of checkouts at 16 connections
  wrk -t2 -c16 -d"${duration}s" --timeout 10s -s bench/checkout.lua "http://127.0.0.1:$port" \
    | grep '^RESULT' | sed "s/^RESULT/$1/"
}

wrk -t1 -c16 -d5s -s bench/checkout.lua "http://127.0.0.1:$port" >/dev/null  # warm-up

read -r db0 kernel0 <<<"$(probe_calls)"
alone=$(checkouts "alone      ")
read -r db1 kernel1 <<<"$(probe_calls)"

wrk -t1 -c8 -d"$((duration + 1))s" --timeout 10s -s bench/probes.lua "http://127.0.0.1:$port" \
  >"$work/probes.out" &
flood=$!
pids+=("$flood")
sleep 0.5
with_probes=$(checkouts "with probes")
wait "$flood" || true
read -r db2 kernel2 <<<"$(probe_calls)"

echo "checkouts at 16 connections:"
printf '  %s   database checks=%d kernel health calls=%d\n' "$alone" $((db1 - db0)) $((kernel1 - kernel0))
printf '  %s   database checks=%d kernel health calls=%d\n' "$with_probes" $((db2 - db1)) $((kernel2 - kernel1))
echo "probes (8 connections, ${PROBE_DELAY_MS} ms pause each): $(grep '^RESULT' "$work/probes.out" | sed 's/^RESULT //')"
