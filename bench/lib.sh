# Shared by the benchmarks (sourced).

bench_psql() {  # bench_psql DB_URL ARGS...: quiet, unaligned psql
  env PGOPTIONS="-c client_min_messages=warning" psql -X -q -t -A "$@"
}

# Waits (up to 10 s) until every audit event has reached the Kernel.
bench_wait_outbox_drained() {  # DB_URL
  for _ in $(seq 1 100); do
    [ "$(bench_psql "$1" -c "SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL")" = 0 ] && return
    sleep 0.1
  done
}

# Prints LABEL followed by the audit lag (delivered_at - created_at, an upper
# bound of Kernel acknowledgement - commit) as events, p50, p99, max, pending.
bench_audit_lag() {  # DB_URL LABEL
  bench_psql "$1" -F ' ' -c "
    SELECT '$2: events=' || count(*)
        || ' p50=' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) * 1000)::numeric, 1)
        || ' p99=' || round((percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) * 1000)::numeric, 1)
        || ' max=' || round((max(lag) * 1000)::numeric, 1)
        || ' pending=' || (SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL)
    FROM (SELECT extract(epoch FROM delivered_at - created_at) AS lag
          FROM audit_outbox WHERE delivered_at IS NOT NULL) l"
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
