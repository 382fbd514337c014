#!/usr/bin/env bash
# Cost as the work grows: checkouts at 64 connections against a database
# that already holds millions of orders, beside the same step against an
# empty one.
#
# First, one private PostgreSQL (synchronous commit on) per size in
# GROWTH_SIZES is loaded with that many orders by bench/growth.sql: each
# order with its items, its completed idempotency key, its two delivered
# audit events and their receipts, keys made as the service makes them; then
# vacuumed and analysed, as autovacuum would have left it. A further empty
# cluster is the reference. Then, for ROUNDS rounds, each cluster in turn
# (ascending, then descending in the next round, so that no size always runs
# first) gets a Release build of the service and the kernel mock, a 5 s
# warm-up and a DURATION s step of POST /api/checkout at 64 connections
# (bench/checkout.lua). Prints each step, then per size the mean rate, its
# fraction of the empty database's mean rate, and p99; draws the rate against
# the database size into CHART_DIR/growth.png.
#
#   bench/growth.sh                           sizes 1,000,000 and 5,000,000
#   GROWTH_SIZES="1000000 2500000 5000000"    other sizes (orders)
#   DURATION=20 ROUNDS=2 bench/growth.sh      20 s steps (default 30), 2 rounds
#                                             (default 4: single steps vary by a
#                                             third on a shared host)
#   GROWTH_RESULT_BYTES=2500                  bytes of each stored result
#                                             document (a real one is ~2,500)
#   GROWTH_DIR=/var/tmp/growth bench/growth.sh
#                                             keep the loaded clusters there:
#                                             a later run with the same
#                                             GROWTH_DIR measures them again
#                                             without loading (5,000,000
#                                             orders take ~30 GB and ~15 min)
#   ROUNDS=0 GROWTH_DIR=...                   load only, to measure later
#   AP_PG_OPTIONS="-c shared_buffers=4GB"     PostgreSQL settings of the
#                                             clusters (scripts/pg.sh)
#   CHART_DIR=docs/charts                     where the chart goes (default)
#   BIN_DIR=DIR BIN_LABEL=NAME                measure the artifact-publisher
#                                             and kernel-mock in DIR (called
#                                             NAME in the chart) instead of a
#                                             Release build of this tree
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source bench/lib.sh
AP_PACKAGES+=(wrk curl gnuplot-nox)
ap_install_missing

duration=${DURATION:-30}
rounds=${ROUNDS:-4}
sizes=${GROWTH_SIZES:-1000000 5000000}
result_bytes=${GROWTH_RESULT_BYTES:-2500}
chart_dir=${CHART_DIR:-docs/charts}
chunk=500000
work=$(mktemp -d /tmp/artifact-publisher-growth.XXXXXX)
chmod 755 "$work"
keep=${GROWTH_DIR:-}
clusters_dir=${keep:-$work}
mkdir -p "$clusters_dir"
chmod 755 "$clusters_dir"
pids=()
clusters=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for dir in "${clusters[@]}"; do scripts/pg.sh stop "$dir" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for size in $sizes; do
  [[ $size =~ ^[1-9][0-9]*$ ]] || { echo "GROWTH_SIZES: $size is not a number of orders" >&2; exit 2; }
done
[[ $rounds =~ ^[0-9]+$ ]] || { echo "ROUNDS: not a number" >&2; exit 2; }
[[ $result_bytes =~ ^[1-9][0-9]*$ ]] || { echo "GROWTH_RESULT_BYTES: not a number of bytes" >&2; exit 2; }
# About 6 KB a order at 2,500 result bytes, with its WAL on the way in.
need_kb=0
for size in $sizes; do
  [ -f "$clusters_dir/pg-$size/PG_VERSION" ] || need_kb=$((need_kb + size * (result_bytes + 3600) / 1024))
done
free_kb=$(df -Pk "$clusters_dir" | awk 'NR == 2 {print $4}')
if [ "$need_kb" -gt $((free_kb - 4 * 1024 * 1024)) ]; then
  echo "growth: loading needs about $((need_kb / 1048576)) GiB in $clusters_dir and only" \
       "$((free_kb / 1048576)) GiB are free (keeping 4 GiB spare); lower GROWTH_SIZES or" \
       "GROWTH_RESULT_BYTES, or point GROWTH_DIR elsewhere" >&2
  exit 2
fi

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); steps of ${duration}s at 64 connections, $rounds rounds"
if [ -n "${BIN_DIR:-}" ]; then
  bin=$BIN_DIR
  echo "binaries: ${BIN_LABEL:-} $bin ($("$bin/artifact-publisher" --version 2>&1 | head -n 1))"
else
  echo "current: $(git log -1 --format='%h %s' | cut -c1-100)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
  bench_build_release . build-release
  bin=build-release/bin
fi

declare -A db_urls
start_cluster() {  # NAME: starts (initialises) DIR/pg-NAME and migrates it
  local dir=$clusters_dir/pg-$1 port
  port=$(ap_free_port $((20000 + RANDOM % 8000)))
  clusters+=("$dir")
  db_urls[$1]=$(scripts/pg.sh start "$dir" "$port")
  ARTIFACT_PUBLISHER_DB_URL=${db_urls[$1]} "$bin/artifact-publisher" migrate >/dev/null
}

# The cluster's own superuser may checkpoint (pg.sh trusts it on 127.0.0.1).
checkpoint() {  # NAME
  bench_psql "${db_urls[$1]/artifact_publisher:artifact_publisher@/postgres@}" -c "CHECKPOINT"
}

# How many orders bench/growth.sql has put into the database.
loaded_orders() {  # DB_URL
  bench_psql "$1" -c "SELECT coalesce((SELECT max(loaded_orders) FROM bench_growth), 0)" 2>/dev/null || echo 0
}

start_cluster empty
for size in $sizes; do
  start_cluster "$size"
  have=$(loaded_orders "${db_urls[$size]}")
  if [ "$have" -ge "$size" ]; then
    echo "load $size: already holds $have orders"
    continue
  fi
  started=$SECONDS
  for ((from = have; from < size; from += chunk)); do
    to=$((from + chunk < size ? from + chunk : size))
    bench_psql "${db_urls[$size]}" -v from="$from" -v to="$to" -v result_bytes="$result_bytes" \
      -f bench/growth.sql >/dev/null
  done
  # As autovacuum would have left it after the load: visibility and
  # statistics current, nothing left to do in the middle of a step. Every
  # table, since which hold the items depends on the schema's age.
  bench_psql "${db_urls[$size]}" -c "VACUUM (ANALYZE)"
  checkpoint "$size"
  echo "load $size: $((size - have)) orders in $((SECONDS - started)) s;" \
       "database $(bench_psql "${db_urls[$size]}" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")"
done
sync
if [ "$rounds" = 0 ]; then
  echo "ROUNDS=0: loaded only${keep:+; the clusters are kept in $keep}"
  exit 0
fi

declare -A rps_sum p99_sum steps
measure() {  # NAME ROUND
  local name=$1 kernel_port port line
  kernel_port=$(ap_free_port $((20000 + RANDOM % 8000)))
  port=$(ap_free_port $((kernel_port + 1)))
  export ARTIFACT_PUBLISHER_DB_URL=${db_urls[$name]} ARTIFACT_PUBLISHER_PORT=$port
  export ARTIFACT_PUBLISHER_KERNEL_URL=http://127.0.0.1:$kernel_port ARTIFACT_PUBLISHER_LOG_LEVEL=warn
  bench_start "$bin" "$kernel_port" "$work/kernel.log" "$work/service-$name.log"
  wrk -t1 -c16 -d5s -s bench/checkout.lua "http://127.0.0.1:$port" >/dev/null  # warm-up
  line=$(wrk -t2 -c64 -d"${duration}s" --timeout 10s -s bench/checkout.lua "http://127.0.0.1:$port" | grep '^RESULT')
  printf 'round %d  orders=%-9s %s\n' "$2" "$([ "$name" = empty ] && echo 0 || echo "$name")" "${line#RESULT }"
  rps_sum[$name]=$(awk -v a="${rps_sum[$name]:-0}" -v b="$(bench_result "$line" rps)" 'BEGIN {print a + b}')
  p99_sum[$name]=$(awk -v a="${p99_sum[$name]:-0}" -v b="$(bench_result "$line" p99_ms)" 'BEGIN {print a + b}')
  steps[$name]=$((${steps[$name]:-0} + 1))
  kill "$service" "$kernel" 2>/dev/null || true
  wait "$service" "$kernel" 2>/dev/null || true
  # What the step wrote goes to disk now, not during the next step.
  checkpoint "$name"
  sync
  sleep 5
}

order=(empty $sizes)
for ((round = 1; round <= rounds; round++)); do
  if ((round % 2)); then names=("${order[@]}"); else names=($(printf '%s\n' "${order[@]}" | tac)); fi
  for name in "${names[@]}"; do measure "$name" "$round"; done
done

empty_rps=$(awk -v s="${rps_sum[empty]}" -v n="${steps[empty]}" 'BEGIN {printf "%.0f", s / n}')
{
  echo "# orders checkouts_per_s fraction_of_empty p99_ms"
  for name in "${order[@]}"; do
    awk -v o="$([ "$name" = empty ] && echo 0 || echo "$name")" -v s="${rps_sum[$name]}" \
        -v p="${p99_sum[$name]}" -v n="${steps[$name]}" -v e="$empty_rps" \
        'BEGIN {printf "%d %.0f %.3f %.1f\n", o, s / n, (s / n) / e, p / n}'
  done
} >"$work/growth.dat"
echo "mean of $rounds rounds (orders, checkouts/s, fraction of the empty database's rate, p99 ms):"
grep -v '^#' "$work/growth.dat" | awk '{printf "  orders=%-9s %6d/s  %5.1f%%  p99 %s ms\n", $1, $2, 100 * $3, $4}'
mkdir -p "$chart_dir"
bench_plot_growth "$work/growth.dat" "$chart_dir/growth.png" \
  "${BIN_LABEL:-$(git log -1 --format=%h)}, $rounds rounds of ${duration}s, $(date -u +%Y-%m-%d)"
echo "chart: $chart_dir/growth.png"
[ -z "$keep" ] || echo "loaded clusters kept in $keep (remove the directory when done)"
