#!/usr/bin/env bash
# The cost of TLS to the Kernel, measured alternately on one database: the
# Release build's service against a plain kernel-mock, then against one
# over https:// with a bearer token, ROUNDS times, SECONDS each at 16
# connections. Alternating keeps the host's drift out of the comparison
# that bench/checkout.sh's last step (run after every other) cannot.
#
#   bench/kernel_tls.sh            2 rounds of 10 s
#   ROUNDS=3 SECONDS_PER_STEP=20 bench/kernel_tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source bench/lib.sh
AP_PACKAGES+=(wrk curl)
ap_install_missing

rounds=${ROUNDS:-2}
seconds=${SECONDS_PER_STEP:-10}
work=$(mktemp -d /tmp/artifact-publisher-kernel-tls.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bench_build_release . build-release
bin=build-release/bin
bench_make_pki "$work/pki"
pg_port=$(ap_free_port $((20000 + RANDOM % 8000)))
plain_port=$(ap_free_port $((pg_port + 1)))
tls_port=$(ap_free_port $((plain_port + 1)))
port=$(ap_free_port $((tls_port + 1)))
db_url=$(scripts/pg.sh start "$work/pg" "$pg_port")
export ARTIFACT_PUBLISHER_DB_URL=$db_url ARTIFACT_PUBLISHER_PORT=$port ARTIFACT_PUBLISHER_LOG_LEVEL=warn
"$bin/artifact-publisher" migrate >/dev/null
"$bin/kernel-mock" --port "$plain_port" >/dev/null 2>"$work/kernel-plain.log" &
pids+=($!)
"$bin/kernel-mock" --port "$tls_port" --tls-cert "$work/pki/kernel.pem" --tls-key "$work/pki/kernel.key" \
  --require-token bench-kernel-token >/dev/null 2>"$work/kernel-tls.log" &
pids+=($!)
sleep 0.5

for round in $(seq 1 "$rounds"); do
  for mode in plain tls; do
    if [ "$mode" = plain ]; then
      export ARTIFACT_PUBLISHER_KERNEL_URL=http://127.0.0.1:$plain_port
      unset ARTIFACT_PUBLISHER_CA_FILE ARTIFACT_PUBLISHER_KERNEL_TOKEN
    else
      export ARTIFACT_PUBLISHER_KERNEL_URL=https://localhost:$tls_port
      export ARTIFACT_PUBLISHER_CA_FILE=$work/pki/ca.pem ARTIFACT_PUBLISHER_KERNEL_TOKEN=bench-kernel-token
    fi
    "$bin/artifact-publisher" serve >/dev/null 2>>"$work/service.log" &
    service=$!
    pids+=("$service")
    bench_wait_ready "$port" "$work/service.log"
    wrk -t1 -c16 -d3s -s bench/checkout.lua "http://127.0.0.1:$port" >/dev/null  # warm-up
    line=$(wrk -t2 -c16 -d"${seconds}s" --timeout 10s -s bench/checkout.lua "http://127.0.0.1:$port" | grep '^RESULT')
    bench_wait_outbox_drained "$db_url"
    printf '%-5s round %s connections=16 %s\n' "$mode" "$round" "${line#RESULT }"
    kill "$service"
    wait "$service" 2>/dev/null || true
  done
done
