-- wrk script: open probes at a paced rate, /health and /readyz in turn.
-- Each connection waits PROBE_DELAY_MS (default 4) between its probes, so
-- 8 connections send about 2,000 probes a second.
local n = 0
local delay_ms = tonumber(os.getenv("PROBE_DELAY_MS") or "4")

request = function()
  n = n + 1
  return wrk.format("GET", n % 2 == 0 and "/health" or "/readyz")
end

delay = function()
  return delay_ms
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors, summary.requests))
end
