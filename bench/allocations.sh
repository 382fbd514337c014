#!/usr/bin/env bash
# Heap allocations per checkout: starts a private PostgreSQL, the kernel mock
# and a Release build of the service, warms up, then counts the service's
# calls of malloc (a uprobe, read by `perf stat`) over a step of
# POST /api/checkout at 64 connections (bench/checkout.lua), and divides by
# the checkouts answered meanwhile. Every allocation the service makes for a
# checkout is counted, on every thread: the HTTP edge, the actors, the
# database workers and the Kernel client forwarding its audit events.
#
# A uprobe costs each call a trap, so the step runs at a fraction of the
# usual rate and says nothing about time: bench/checkout.sh measures that.
# The probes sit on glibc's malloc and on jemalloc's malloc and operator new
# (the service links jemalloc unless built with a sanitizer), so builds with
# either allocator compare.
# The count varies by a percent or two between steps (the batches differ).
#
#   bench/allocations.sh                  8 s step
#   DURATION=15 bench/allocations.sh
#   BASELINE=<rev> bench/allocations.sh   first the same step with a Release
#                                         build of <rev>
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source bench/lib.sh
AP_PACKAGES+=(wrk curl linux-perf libjemalloc2)
ap_install_missing

duration=${DURATION:-8}
library() { ldconfig -p | awk -v name="$1" '$1 == name && /x86-64/ && !found {print $NF; found = 1}'; }
libc=$(library libc.so.6)
jemalloc=$(library libjemalloc.so.2)
work=$(mktemp -d /tmp/artifact-publisher-allocations.XXXXXX)
chmod 755 "$work"
pids=()
clusters=()
probes_added=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for dir in "${clusters[@]}"; do scripts/pg.sh stop "$dir" >/dev/null 2>&1 || true; done
  for probe in "${probes_added[@]}"; do perf probe -q -d "$probe" 2>/dev/null || true; done
  [ -n "${baseline_dir:-}" ] && { git worktree remove --force "$baseline_dir" 2>/dev/null || rm -rf "$baseline_dir"; }
  rm -rf "$work"
}
trap cleanup EXIT

[ -n "$libc" ] && [ -n "$jemalloc" ] \
  || { echo "glibc's or jemalloc's shared library not found (ldconfig -p)" >&2; exit 1; }
# glibc's operator new (libstdc++) calls its malloc; jemalloc defines its own
# operator new, which does not, so it gets probes of its own.
events=()
for probe in "$libc libc_malloc malloc" "$jemalloc jemalloc_malloc malloc" \
             "$jemalloc jemalloc_new _Znwm" "$jemalloc jemalloc_new_array _Znam"; do
  read -r lib name function <<<"$probe"
  event=ap_alloc:$name
  if ! perf probe -l 2>/dev/null | grep -q "$event "; then
    perf probe -q --no-demangle -x "$lib" --add "$event=$function" \
      || { echo "cannot place a uprobe on $function in '$lib': perf probe needs root and a kernel with uprobes" >&2; exit 1; }
    probes_added+=("$event")
  fi
  events+=(-e "$event")
done

measure() {  # LABEL BIN_DIR
  local label=$1 bin=$2 pg_port kernel_port port before after calls
  pg_port=$(ap_free_port $((20000 + RANDOM % 8000)))
  kernel_port=$(ap_free_port $((pg_port + 1)))
  port=$(ap_free_port $((kernel_port + 1)))
  clusters+=("$work/pg-$label")
  export ARTIFACT_PUBLISHER_DB_URL
  ARTIFACT_PUBLISHER_DB_URL=$(scripts/pg.sh start "$work/pg-$label" "$pg_port")
  export ARTIFACT_PUBLISHER_PORT=$port ARTIFACT_PUBLISHER_KERNEL_URL=http://127.0.0.1:$kernel_port
  export ARTIFACT_PUBLISHER_LOG_LEVEL=warn
  "$bin/artifact-publisher" migrate >/dev/null
  bench_start "$bin" "$kernel_port" "$work/kernel-$label.log" "$work/service-$label.log"
  wrk -t1 -c16 -d5s -s bench/checkout.lua "http://127.0.0.1:$port" >/dev/null  # warm-up

  wrk -t2 -c64 -d$((duration + 4))s --timeout 10s -s bench/checkout.lua "http://127.0.0.1:$port" >/dev/null &
  local load=$!
  # The probes are placed with the counting off, and counting is switched on
  # and off around the step through perf's control fifo: placing a probe in
  # a running process takes a while, during which checkouts go uncounted.
  mkfifo "$work/control-$label" "$work/ack-$label"
  perf stat -x, -D -1 --control "fifo:$work/control-$label,$work/ack-$label" "${events[@]}" \
    -p "$service" -o "$work/stat-$label" >/dev/null 2>&1 &
  local counter=$! answer
  exec 8>"$work/control-$label" 9<"$work/ack-$label"
  sleep 2
  before=$(bench_checkouts_total "$port")
  echo enable >&8 && read -r -t 30 answer <&9
  sleep "$duration"
  echo disable >&8 && read -r -t 30 answer <&9
  after=$(bench_checkouts_total "$port")
  exec 8>&- 9<&-
  kill -INT "$counter" && wait "$counter" || true
  wait "$load" || true
  calls=$(awk -F, '/ap_alloc:/ {if ($1 !~ /^[0-9]+$/) bad = 1; n += $1} END {print bad ? "?" : n}' "$work/stat-$label")
  awk -v l="$label" -v c="$calls" -v n=$((after - before)) 'BEGIN {
    if (n > 0 && c ~ /^[0-9]+$/) printf "%-9s allocations per checkout: %.1f (%d checkouts)\n", l, c / n, n
    else printf "%-9s allocations per checkout: not counted (%s calls, %d checkouts)\n", l, c, n }'
  kill "$service" "$kernel" 2>/dev/null || true
  wait "$service" 2>/dev/null || true
  scripts/pg.sh stop "$work/pg-$label" >/dev/null
}

echo "machine: $(nproc) cores; steps of ${duration}s at 64 connections"
if [ -n "${BASELINE:-}" ]; then
  bench_baseline_build "$BASELINE"
  measure baseline "$baseline_dir/build-release/bin"
fi
echo "current: $(git log -1 --format='%h %s' | cut -c1-100)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
bench_build_release . build-release
measure current build-release/bin
