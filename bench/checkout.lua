-- wrk script: every request is a new customer with its own Idempotency-Key,
-- so each one is a full checkout that commits an order.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + id)
  prefix = string.format("bench-%d-%d-%d", os.time(), id, math.random(1, 1000000000))
end

request = function()
  counter = counter + 1
  local customer = prefix .. "-" .. counter
  local body = '{"customerId":"' .. customer .. '","email":"b@example.com","currency":"usd",'
    .. '"items":[{"sku":"creator-basic","quantity":1},{"sku":"artifact-license","quantity":2}]}'
  return wrk.format("POST", "/api/checkout",
    {["Content-Type"] = "application/json", ["Idempotency-Key"] = customer}, body)
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, errors, summary.requests))
end
