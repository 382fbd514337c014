#!/usr/bin/env bash
# Measures audit lag under a steady load of checkouts with the Kernel up:
# starts a private PostgreSQL, the kernel mock and the service, runs
# WORKERS back-to-back checkout loops for SECONDS, waits for the outbox to
# drain, and prints the lag (Kernel acknowledgement recorded − order commit)
# as p50/p99/max from PostgreSQL, plus the service's own histogram.
#
#   bench/audit_lag.sh [SECONDS=30] [WORKERS=4]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source bench/lib.sh
AP_PACKAGES+=(curl)
ap_install_missing
# Its own Release tree: build/ is the test build of run-tests.sh.
ap_build Release build-release -DBUILD_TESTING=OFF >/dev/null

seconds=${1:-30}
workers=${2:-4}
work=$(mktemp -d /tmp/artifact-publisher-bench.XXXXXX)
chmod 755 "$work"
pg_port=$(ap_free_port 26432)  # below the ephemeral ports of client sockets
kernel_port=$(ap_free_port 16060)
port=$(ap_free_port 16160)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/pg.sh stop "$work/pg" || true
  rm -rf "$work"
}
trap cleanup EXIT

export ARTIFACT_PUBLISHER_DB_URL=$(scripts/pg.sh start "$work/pg" "$pg_port")
export ARTIFACT_PUBLISHER_PORT=$port
export ARTIFACT_PUBLISHER_KERNEL_URL=http://127.0.0.1:$kernel_port
build-release/bin/artifact-publisher migrate >/dev/null
bench_start build-release/bin "$kernel_port" "$work/kernel.log" "$work/service.log"

worker() {
  local n=0 end=$((SECONDS + seconds))
  while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null -w '%{http_code}\n' -X POST "http://127.0.0.1:$port/api/checkout" \
      -H 'Content-Type: application/json' \
      -d "{\"customerId\":\"bench-$1-$n\",\"email\":\"b@example.com\",\"currency\":\"usd\",\"items\":[{\"sku\":\"creator-basic\",\"quantity\":1}]}"
    n=$((n + 1))
  done
}
loaders=()
for w in $(seq 1 "$workers"); do
  worker "$w" >"$work/codes.$w" &
  loaders+=($!)
done
wait "${loaders[@]}"

bench_wait_outbox_drained "$ARTIFACT_PUBLISHER_DB_URL"
total=$(cat "$work"/codes.* | wc -l)
ok=$(cat "$work"/codes.* | grep -c '^201$' || true)
echo "checkouts: $total sent, $ok answered 201, over ${seconds}s with $workers workers ($((ok / seconds))/s)"
bench_audit_lag "$ARTIFACT_PUBLISHER_DB_URL" "audit lag (receipt - queued, ms)"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^ap_audit_(freshness_breaches_total|lag_seconds_(count|sum))'
