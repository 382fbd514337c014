# Shared by the benchmarks (sourced).

bench_psql() {  # bench_psql DB_URL ARGS...: quiet, unaligned psql
  env PGOPTIONS="-c client_min_messages=warning" psql -X -q -t -A "$@"
}

# Checkouts the service on PORT has answered so far, any outcome.
bench_checkouts_total() {  # PORT
  curl -s "http://127.0.0.1:$1/metrics" | awk '/^ap_checkouts_total/ {n += $2} END {printf "%d", n}'
}

# Waits (up to 10 s) until the service on PORT says it is ready. If it does
# not, says so with the end of LOG and fails, rather than leave the
# measurement to run against nothing.
bench_wait_ready() {  # PORT [LOG]
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the service on port $1 did not become ready within 10 s" >&2
  [ -z "${2:-}" ] || tail -n 5 "$2" >&2
  return 1
}

# Starts BIN_DIR's kernel mock on KERNEL_PORT (with KERNEL_ARGS), then the
# service as the ARTIFACT_PUBLISHER_* variables configure it, appending
# their output to KERNEL_LOG and SERVICE_LOG, and waits until the service is
# ready. Sets `kernel` and `service` to their pids and adds both to `pids`,
# which the caller's clean-up kills.
bench_start() {  # BIN_DIR KERNEL_PORT KERNEL_LOG SERVICE_LOG [KERNEL_ARGS...]
  "$1/kernel-mock" --port "$2" "${@:5}" >/dev/null 2>>"$3" &
  kernel=$!
  "$1/artifact-publisher" serve >/dev/null 2>>"$4" &
  service=$!
  pids+=("$kernel" "$service")
  bench_wait_ready "$ARTIFACT_PUBLISHER_PORT" "$4"
}

# The value of KEY (rps, p50_ms, p90_ms, p99_ms, max_ms, errors, requests)
# in the RESULT line bench/checkout.lua prints; empty when it has none.
bench_result() {  # LINE KEY
  awk -v line="$1" -v key="$2" 'BEGIN {
    n = split(line, kv, /[ =]/)
    for (i = 2; i < n; i += 2) if (kv[i] == key) { print kv[i + 1]; exit } }'
}

# Waits (up to 10 s) until every audit event has reached the Kernel.
bench_wait_outbox_drained() {  # DB_URL
  for _ in $(seq 1 100); do
    [ "$(bench_psql "$1" -c "SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL")" = 0 ] && return
    sleep 0.1
  done
}

# Prints LABEL followed by the audit lag (Kernel receipt kept - event queued,
# an upper bound of Kernel acknowledgement - commit) as events, p50, p99, max,
# pending. The receipts note when their event was queued (migration 0016);
# a build from before it kept delivered events in the outbox instead.
bench_audit_lag() {  # DB_URL LABEL
  local delivered="SELECT received_at AS delivered_at, queued_at AS created_at FROM audit_receipts"
  [ "$(bench_psql "$1" -c "SELECT count(*) FROM information_schema.columns
                           WHERE table_name = 'audit_receipts' AND column_name = 'queued_at'")" = 1 ] \
    || delivered="SELECT delivered_at, created_at FROM audit_outbox"
  bench_psql "$1" -F ' ' -c "
    SELECT '$2: events=' || count(*)
        || ' p50=' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) * 1000)::numeric, 1)
        || ' p99=' || round((percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) * 1000)::numeric, 1)
        || ' max=' || round((max(lag) * 1000)::numeric, 1)
        || ' pending=' || (SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL)
    FROM (SELECT extract(epoch FROM delivered_at - created_at) AS lag
          FROM ($delivered) d WHERE delivered_at IS NOT NULL AND created_at IS NOT NULL) l"
}

# Makes a private CA and a certificate for localhost/127.0.0.1 signed by it:
# DIR/ca.pem, DIR/kernel.pem, DIR/kernel.key (P-256, valid for two days).
bench_make_pki() {  # DIR
  local dir=$1
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench-ca -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj /CN=localhost -keyout "$dir/kernel.key" -out "$dir/kernel.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/ext"
  openssl x509 -req -in "$dir/kernel.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/ext" -out "$dir/kernel.pem" 2>/dev/null
}

# A worktree of REV at a fixed path per revision, so that a second run finds
# its objects in the compiler cache, with a Release build in it; sets
# baseline_dir, which the caller removes when it is done.
bench_baseline_build() {  # REV
  baseline_dir=${TMPDIR:-/tmp}/artifact-publisher-baseline-$(git rev-parse --short "$1")
  git worktree remove --force "$baseline_dir" 2>/dev/null || rm -rf "$baseline_dir"
  git worktree add --detach "$baseline_dir" "$1" >/dev/null 2>&1
  echo "baseline: $(git -C "$baseline_dir" log -1 --format='%h %s' | cut -c1-100)"
  bench_build_release "$baseline_dir" "$baseline_dir/build-release"
}

# A Release build of the service and the kernel mock (and more targets).
bench_build_release() {  # SOURCE_DIR BUILD_DIR [MORE TARGETS...]
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$2" -j2 --target artifact-publisher kernel-mock "${@:3}" >/dev/null
}

# Charts, drawn with gnuplot into PNG files.
bench_gnuplot() {  # OUT.png: reads the plot commands from stdin
  { printf 'set terminal pngcairo size 1100,480 font "DejaVu Sans,10"\nset output "%s"\n' "$1"
    printf 'set grid\nset key top left\nset datafile missing "-"\n'
    cat; } | gnuplot
}

# DATA: "# label connections rps p50_ms p90_ms p99_ms" lines from
# bench/checkout.sh. Draws throughput and latency percentiles by connection
# count, a line per build.
bench_plot_checkout() {  # DATA OUT.png SUBTITLE
  local labels
  labels=$(awk '!/^#/ && !seen[$1]++ {printf "%s ", $1}' "$1")
  bench_gnuplot "$2" <<GP
labels = "$labels"
set multiplot layout 1,2 title "Checkouts (POST /api/checkout, every request durable) — $3"
set logscale x 2
set xtics (1, 16, 64)
set xrange [0.8:80]
set xlabel "connections"
set ylabel "checkouts/s"
set yrange [0:*]
set title "Throughput"
plot for [l in labels] "$1" using 2:(strcol(1) eq l ? \$3 : 1/0) with linespoints lw 2 pt 7 title l
set ylabel "ms"
set logscale y
set yrange [*:*]
set title "Latency: p50 (dashed) and p99 (solid)"
plot for [i=1:words(labels)] "$1" using 2:(strcol(1) eq word(labels, i) ? \$4 : 1/0) \
       with linespoints lc i dt 2 pt 6 notitle, \
     for [i=1:words(labels)] "$1" using 2:(strcol(1) eq word(labels, i) ? \$6 : 1/0) \
       with linespoints lc i lw 2 pt 7 title word(labels, i)
unset multiplot
GP
}

# DATA: "# orders checkouts_per_s fraction_of_empty p99_ms" lines from
# bench/growth.sh. Draws the rate and its fraction of the empty database's
# against the number of orders stored.
bench_plot_growth() {  # DATA OUT.png SUBTITLE
  bench_gnuplot "$2" <<GP
set multiplot layout 1,2 title "Checkouts at 64 connections against the orders already stored — $3"
set xlabel "orders in the database (millions)"
set ylabel "checkouts/s"
set yrange [0:*]
set xrange [-0.2:*]
set title "Rate"
plot "$1" using (\$1 / 1e6):2 with linespoints lw 2 pt 7 title "checkouts/s"
set ylabel "% of the empty database's rate"
set yrange [0:110]
set title "Rate kept (target: 85 % at 5 M orders)"
plot "$1" using (\$1 / 1e6):(100 * \$3) with linespoints lw 2 pt 7 title "rate kept", \
     85 with lines dt 2 lc rgb "red" title "target"
unset multiplot
GP
}
