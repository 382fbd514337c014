#!/usr/bin/env bash
# Checkout benchmark: starts a private PostgreSQL (synchronous commit on), the
# kernel mock and a Release build of the service, runs POST /api/checkout
# with wrk at 1, 16 and 64 connections (each request a new customer and
# Idempotency-Key) after a warm-up, and prints requests/s, latency
# percentiles, errors, the service's peak RSS and the audit lag. In the same
# run pgbench replays the SQL a checkout commits at the same client counts,
# and the checkout rate is printed as a fraction of that database-only rate.
#
#   bench/checkout.sh               30 s per step
#   DURATION=10 bench/checkout.sh   shorter steps
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source bench/lib.sh
AP_PACKAGES+=(wrk curl)
ap_install_missing
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build-release -j2 --target artifact-publisher kernel-mock >/dev/null

duration=${DURATION:-30}
work=$(mktemp -d /tmp/artifact-publisher-bench.XXXXXX)
chmod 755 "$work"
base=$((20000 + RANDOM % 8000))
pg_port=$(ap_free_port "$base")
kernel_port=$(ap_free_port $((pg_port + 1)))
port=$(ap_free_port $((kernel_port + 1)))
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/pg.sh stop "$work/pg" || true
  rm -rf "$work"
}
trap cleanup EXIT

db_url=$(scripts/pg.sh start "$work/pg" "$pg_port")
export ARTIFACT_PUBLISHER_DB_URL=$db_url ARTIFACT_PUBLISHER_PORT=$port
export ARTIFACT_PUBLISHER_KERNEL_URL=http://127.0.0.1:$kernel_port ARTIFACT_PUBLISHER_LOG_LEVEL=warn
build-release/bin/artifact-publisher migrate >/dev/null
build-release/bin/kernel-mock --port "$kernel_port" 2>"$work/kernel.log" &
pids+=($!)
build-release/bin/artifact-publisher serve 2>"$work/service.log" &
service=$!
pids+=($service)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$service/status"; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); steps of ${duration}s"
rss_start=$(rss_kb)
wrk -t1 -c16 -d5s -s bench/checkout.lua "http://127.0.0.1:$port" >/dev/null  # warm-up
declare -A rps
for c in 1 16 64; do
  threads=$(( c < 2 ? 1 : 2 ))
  line=$(wrk -t"$threads" -c"$c" -d"${duration}s" --timeout 10s -s bench/checkout.lua "http://127.0.0.1:$port" | grep '^RESULT')
  rps[$c]=$(sed 's/.*rps=\([0-9]*\).*/\1/' <<<"$line")
  echo "checkout  connections=$c ${line#RESULT }"
done
bench_wait_outbox_drained "$db_url"
echo "service peak RSS: start $((rss_start / 1024)) MiB, end $(( $(rss_kb) / 1024 )) MiB"
bench_audit_lag "$db_url" "audit lag ms (delivered_at - created_at)"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^ap_audit_freshness_breaches_total'

bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
for c in 1 16 64; do
  tps=$(PGOPTIONS="-c client_min_messages=warning" "$bindir/pgbench" -n -c "$c" -j "$(( c < 2 ? 1 : 2 ))" \
          -T "$duration" -f bench/checkout.sql "$db_url" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3; exit}')
  echo "pgbench   clients=$c tps=$tps  checkout/pgbench=$(awk -v a="${rps[$c]}" -v b="$tps" 'BEGIN {printf "%.0f%%", (b > 0 ? 100 * a / b : 0)}')"
done
