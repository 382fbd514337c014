#!/usr/bin/env bash
# CPU per checkout of two builds in alternating steps: the current tree and
# BASELINE=<rev>, each a Release build with a private PostgreSQL of its own
# (synchronous commit on) and its own kernel mock. Each step starts the
# build's PostgreSQL, kernel mock and service, warms up for 3 s, drives
# POST /api/checkout (bench/checkout.lua) at CONNECTIONS for DURATION
# seconds, and reads from /proc the CPU the service, its PostgreSQL (the
# postmaster, every process under it, and those it reaped during the step,
# less their time before it) and the kernel mock used over the step, and the context switches of the
# service's threads, divided by the checkouts answered meanwhile, with
# PostgreSQL's CPU also split by kind of process (its backends, WAL writer,
# checkpointer, autovacuum, ...); reads the audit outbox as the step left
# it (events undelivered, and the lag of the step's events delivered), since
# CPU saved by leaving the outbox behind is not saved; then everything
# stops, the page cache is written back, and the next step runs the other
# build.
#
# bench/checkout.sh runs each build once, one after the other, and this
# host drifts by 5-10 % within minutes, more than the changes of a few
# percent that are left to make. Here the order alternates in pairs
# (baseline first, then current first, ...), so a drift in time favours
# neither build, and each pair of neighbouring steps is compared on its own:
# the summary gives each build's medians and, pair by pair, the difference
# in service + PostgreSQL CPU per checkout and how many pairs favoured the
# current build.
#
#   BASELINE=<rev> bench/alternate.sh                  4 pairs of 12 s steps
#   PAIRS=8 DURATION=15 CONNECTIONS=16 BASELINE=<rev> bench/alternate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source bench/lib.sh
AP_PACKAGES+=(wrk curl)
ap_install_missing

[ -n "${BASELINE:-}" ] || { echo "BASELINE=<rev> is required: the build to compare with" >&2; exit 2; }
duration=${DURATION:-12}
connections=${CONNECTIONS:-64}
pairs=${PAIRS:-4}
for n in "$duration" "$connections" "$pairs"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "DURATION, CONNECTIONS and PAIRS are positive integers" >&2; exit 2; }
done
work=$(mktemp -d /tmp/artifact-publisher-alternate.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for label in baseline current; do scripts/pg.sh stop "$work/pg-$label" >/dev/null 2>&1 || true; done
  [ -n "${baseline_dir:-}" ] && { git worktree remove --force "$baseline_dir" 2>/dev/null || rm -rf "$baseline_dir"; }
  rm -rf "$work"
}
trap cleanup EXIT

# CPU time (clock ticks) a process has used.
ticks() {  # PID
  awk '{printf "%d", $14 + $15}' "/proc/$1/stat"
}

# CPU time (clock ticks) of each process under PostgreSQL's postmaster, by
# kind: "PID KIND TICKS" lines, KIND a word from its title (backend for the
# service's connections, walwriter, checkpointer, autovacuum, ...), and the
# postmaster's own time with what it reaped as "ended" (mostly autovacuum
# workers that began and ended within a step, which no reading sees live).
pg_ticks_by_kind() {  # POSTMASTER
  awk '{printf "%s ended %d\n", $1, $14 + $15 + $16 + $17}' "/proc/$1/stat"
  local p title kind
  for p in $(pgrep -P "$1" || true); do
    title=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
    case $title in
      *walwriter*) kind=walwriter ;;
      *checkpointer*) kind=checkpointer ;;
      *"background writer"*) kind=bgwriter ;;
      *"autovacuum worker"*) kind=autovacuum ;;
      *autovacuum*|*launcher*) kind=launchers ;;
      *) kind=backend ;;
    esac
    awk -v p="$p" -v k="$kind" '{printf "%s %s %d\n", p, k, $14 + $15}' "/proc/$p/stat" 2>/dev/null || true
  done
}

# Context switches, voluntary and not, of every thread of a process so far.
switches() {  # PID
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {printf "%d", s}'
}

declare -A bin_of=([current]=build-release/bin)
declare -A pg_port_of
step() {  # N LABEL: one step of LABEL's build; appends "LABEL N rps p99 service pg mock switches" to results
  local n=$1 label=$2 bin=${bin_of[$2]}
  local pg_port=${pg_port_of[$label]} kernel_port port db_url postmaster
  kernel_port=$(ap_free_port $((pg_port + 1)))
  port=$(ap_free_port $((kernel_port + 1)))
  db_url=$(scripts/pg.sh start "$work/pg-$label" "$pg_port")
  postmaster=$(head -n 1 "$work/pg-$label/postmaster.pid")
  export ARTIFACT_PUBLISHER_DB_URL=$db_url ARTIFACT_PUBLISHER_PORT=$port
  export ARTIFACT_PUBLISHER_KERNEL_URL=http://127.0.0.1:$kernel_port ARTIFACT_PUBLISHER_LOG_LEVEL=warn
  bench_start "$bin" "$kernel_port" "$work/kernel-$label.log" "$work/service-$label.log" \
    || { echo "step $n $label: no service to measure" >&2; exit 1; }
  local threads=$(( connections < 2 ? 1 : 2 ))
  wrk -t"$threads" -c"$connections" -d3s -s bench/checkout.lua "http://127.0.0.1:$port" >/dev/null  # warm-up

  local s0 k0 c0 x0 s1 k1 c1 x1 line since outbox pg
  since=$(bench_psql "$db_url" -c "SELECT now()")
  pg_ticks_by_kind "$postmaster" >"$work/pg-kinds-0"
  s0=$(ticks "$service"); k0=$(ticks "$kernel"); x0=$(switches "$service")
  c0=$(bench_checkouts_total "$port")
  line=$(wrk -t"$threads" -c"$connections" -d"${duration}s" --timeout 10s -s bench/checkout.lua \
           "http://127.0.0.1:$port" | grep '^RESULT')
  s1=$(ticks "$service"); k1=$(ticks "$kernel"); x1=$(switches "$service")
  c1=$(bench_checkouts_total "$port")
  pg_ticks_by_kind "$postmaster" >"$work/pg-kinds-1"
  # PostgreSQL's CPU over the step, whole, then by kind ("TOTAL KIND TICKS
  # KIND TICKS ..."). A process that ended during the step is in the
  # postmaster's reaped time with its whole life: its time before the step
  # is taken off there.
  pg=$(awk '
    FNR == NR { before[$1] = $3; next }
    { d[$2] += $3 - ($1 in before ? before[$1] : 0); seen[$1] = 1 }
    END {
      for (p in before) if (!(p in seen)) d["ended"] -= before[p]
      n = split("backend walwriter checkpointer bgwriter autovacuum launchers ended", kinds, " ")
      for (i = 1; i <= n; i++) { total += d[kinds[i]]; line = line " " kinds[i] " " d[kinds[i]] + 0 }
      printf "%d%s", total, line
    }' "$work/pg-kinds-0" "$work/pg-kinds-1")
  # The audit outbox as the step left it: events still undelivered, and the
  # lag (receipt kept - event queued) of the step's events delivered. CPU
  # per checkout means nothing if the outbox fell behind: the work was left
  # for later.
  outbox=$(bench_psql "$db_url" -F ' ' -c "
    SELECT (SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL),
           coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) * 1000)::numeric, 1), 0)
    FROM (SELECT extract(epoch FROM received_at - queued_at) AS lag FROM audit_receipts
          WHERE queued_at >= '$since') l")
  kill "$service" "$kernel" 2>/dev/null || true
  wait "$service" "$kernel" 2>/dev/null || true
  scripts/pg.sh stop "$work/pg-$label" >/dev/null
  sync

  awk -v l="$label" -v n="$n" -v rps="$(bench_result "$line" rps)" \
      -v p99="$(bench_result "$line" p99_ms)" -v hz="$(getconf CLK_TCK)" -v c=$((c1 - c0)) \
      -v s=$((s1 - s0)) -v p="${pg%% *}" -v kinds="${pg#* }" -v k=$((k1 - k0)) -v x=$((x1 - x0)) \
      -v pending="${outbox% *}" -v lag="${outbox#* }" -v out="$work/results" 'BEGIN {
    if (c <= 0) { print "step " n " " l ": no checkouts answered" > "/dev/stderr"; exit 1 }
    ms = 1000 / hz / c
    printf "step %2d %-8s %5d checkouts/s  p99 %6.1f ms  cpu ms per checkout: service %.3f  postgres %.3f  together %.3f  kernel-mock %.3f  service switches %.2f  audit lag p99 %.1f ms, %d pending\n",
      n, l, rps, p99, s * ms, p * ms, (s + p) * ms, k * ms, x / c, lag, pending
    printf "%s %d %d %.1f %.4f %.4f %.4f %.3f %.1f %d %d\n", l, n, rps, p99, s * ms, p * ms, k * ms, x / c, lag, pending, c >> out
    line = "        postgres cpu ms per checkout by process:"
    m = split(kinds, kv, " ")
    for (i = 1; i < m; i += 2) line = line sprintf("  %s %.3f", kv[i], kv[i + 1] * ms)
    print line
  }'
  sleep 3
}

echo "machine: $(nproc) cores; $pairs pairs of ${duration}s steps at $connections connections"
bench_baseline_build "$BASELINE"
bin_of[baseline]=$baseline_dir/build-release/bin
echo "current: $(git log -1 --format='%h %s' | cut -c1-100)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
bench_build_release . build-release
pg_port_of[baseline]=$(ap_free_port $((20000 + RANDOM % 8000)))
pg_port_of[current]=$(ap_free_port $((pg_port_of[baseline] + 10)))

# Each build's cluster is made and migrated before the first step, and what
# that (and the builds) wrote is on disk: otherwise the first steps pay for
# it (the first step of a run was the dearest of eight, by a quarter, when
# both builds were the same).
for label in baseline current; do
  db_url=$(scripts/pg.sh start "$work/pg-$label" "${pg_port_of[$label]}")
  ARTIFACT_PUBLISHER_DB_URL=$db_url "${bin_of[$label]}/artifact-publisher" migrate >/dev/null
  scripts/pg.sh stop "$work/pg-$label" >/dev/null
done
sync
sleep 5

n=0
for pair in $(seq 1 "$pairs"); do
  order="baseline current"
  [ $((pair % 2)) = 0 ] && order="current baseline"
  for label in $order; do
    n=$((n + 1))
    step "$n" "$label"
  done
done

# Medians per build, and the pairs: steps 2i-1 and 2i ran next to each other.
awk -v pairs="$pairs" '
  function median(list, count,   sorted, i, j, t) {
    for (i = 1; i <= count; i++) sorted[i] = list[i]
    for (i = 2; i <= count; i++) for (j = i; j > 1 && sorted[j - 1] > sorted[j]; j--) {
      t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t }
    return count % 2 ? sorted[(count + 1) / 2] : (sorted[count / 2] + sorted[count / 2 + 1]) / 2
  }
  {
    k = ++count[$1]
    rps[$1, k] = $3; p99[$1, k] = $4; svc[$1, k] = $5; pg[$1, k] = $6; both[$1, k] = $5 + $6
    sw[$1, k] = $8; lag[$1, k] = $9
    # Behind: more events undelivered at the end than half a second of them.
    if ($10 > $3) behind = behind sprintf(" %d (%s, %d pending)", $2, $1, $10)
    in_pair[int(($2 + 1) / 2), $1] = $5 + $6
  }
  END {
    for (b = 1; b <= 2; b++) {
      l = b == 1 ? "baseline" : "current"
      delete r; delete q; delete s; delete g; delete t; delete w; delete a
      for (i = 1; i <= count[l]; i++) {
        r[i] = rps[l, i]; q[i] = p99[l, i]; s[i] = svc[l, i]; g[i] = pg[l, i]; t[i] = both[l, i]
        w[i] = sw[l, i]; a[i] = lag[l, i] }
      together[l] = median(t, count[l])
      printf "median %-8s %5d checkouts/s  p99 %6.1f ms  cpu ms per checkout: service %.3f  postgres %.3f  together %.3f  service switches %.2f  audit lag p99 %.1f ms\n",
        l, median(r, count[l]), median(q, count[l]), median(s, count[l]), median(g, count[l]), together[l], median(w, count[l]), median(a, count[l])
    }
    if (behind != "")
      printf "the audit outbox fell behind in steps%s: their CPU per checkout leaves work undone\n", behind
    favoured = 0
    for (i = 1; i <= pairs; i++) {
      d[i] = in_pair[i, "current"] - in_pair[i, "baseline"]
      if (d[i] < 0) favoured++
      line = line sprintf(" %+.3f", d[i])
    }
    printf "pairs, service + postgres cpu ms per checkout, current - baseline:%s\n", line
    printf "pairs: median difference %+.3f ms (%+.1f %% of the baseline median); %d of %d favour current\n",
      median(d, pairs), 100 * median(d, pairs) / together["baseline"], favoured, pairs
  }' "$work/results"
