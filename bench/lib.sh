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
