#!/usr/bin/env bash
# End-to-end smoke test: a checkout, reading it back, verifying its proof
# offline, decrypting its delivery, finding its audit event in the Kernel by
# order id, and verifying the audit receipts the order shows. Prints the
# canary order ids.
#
#   scripts/smoke.sh                       start a private stack and test it
#   API_BASE_URL=http://host:6137 KERNEL_URL=http://host:6050 scripts/smoke.sh
#                                          test that endpoint instead
# With API_TOKEN set, /api requests carry it. Needs curl and build/bin.
# A failed step prints its evidence under its FAIL line: the request, the HTTP
# status and the start of the body it answered (or the tool's output); a
# failed run keeps its working directory and says where.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
bin=${AP_BIN_DIR:-build/bin}
[ -x "$bin/artifact-publisher" ] || { echo "smoke: build first (build/bin/artifact-publisher)" >&2; exit 2; }
command -v curl >/dev/null || { echo "smoke: curl is needed (apt-get install curl)" >&2; exit 2; }

# shellcheck source=scripts/private-stack.sh
source scripts/private-stack.sh
ap_private_stack smoke
# A failed run keeps $work: the answers, the tools' output, the stack's logs.
ap_keep_work_on_failure=1

if [ -z "${API_BASE_URL:-}" ]; then
  # Below the kernel's ephemeral range, where other tests' ports come from.
  base=$((20000 + RANDOM % 8000))
  pg_port=$(ap_free_port "$base")
  kernel_port=$(ap_free_port $((pg_port + 1)))
  port=$(ap_free_port $((kernel_port + 1)))
  db_url=$(scripts/pg.sh start "$work/pg" "$pg_port")
  ARTIFACT_PUBLISHER_DB_URL=$db_url "$bin/artifact-publisher" migrate >/dev/null
  "$bin/kernel-mock" --port "$kernel_port" 2>"$work/kernel.log" &
  pids+=($!)
  ARTIFACT_PUBLISHER_DB_URL=$db_url ARTIFACT_PUBLISHER_PORT=$port \
    ARTIFACT_PUBLISHER_KERNEL_URL=http://127.0.0.1:$kernel_port \
    "$bin/artifact-publisher" serve 2>"$work/service.log" &
  pids+=($!)
  API_BASE_URL=http://127.0.0.1:$port
  KERNEL_URL=http://127.0.0.1:$kernel_port
  for _ in $(seq 1 100); do curl -sf "$API_BASE_URL/readyz" >/dev/null && break; sleep 0.1; done
fi
KERNEL_URL=${KERNEL_URL:-http://127.0.0.1:6050}
auth=()
[ -n "${API_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $API_TOKEN")
passed=0
failed=0
why=""
check() {  # check NAME COMMAND...: on failure, also prints $why (the step's evidence)
  if "${@:2}"; then
    echo "ok   $1"
    passed=$((passed + 1))
  else
    echo "FAIL $1"
    [ -z "$why" ] || printf '%s\n' "$why" | sed 's/^/       /'
    failed=$((failed + 1))
  fi
  why=""
}
field() {  # field NAME < json: the first string value of NAME
  grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4
}
# call OUT METHOD URL [CURL_ARGS...]: the answer's body goes to OUT, its
# status to $status, and what it was to $answer (for the step's evidence).
call() {
  local out=$1 method=$2 url=$3
  : >"$out"
  status=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "${@:4}" "$url" 2>"$work/curl.err") || true
  answer="$method $url answered HTTP $status"
  [ -s "$work/curl.err" ] && answer+=" ($(head -c 300 "$work/curl.err" | tr '\n' ' '))"
  [ -s "$out" ] && answer+=$'\n'"$(head -c 2000 "$out")"
  true
}
# The output of a tool (verify-proof, decrypt-delivery), at most 2000 bytes.
output() { head -c 2000 "$1"; }

canary="canary-$(date +%s)-$$"
call "$work/order.json" POST "$API_BASE_URL/api/checkout" \
  "${auth[@]}" -H 'Content-Type: application/json' -H "Idempotency-Key: $canary" \
  -d "{\"customerId\":\"$canary\",\"email\":\"canary@example.com\",\"currency\":\"usd\",\"items\":[{\"sku\":\"artifact-license\",\"quantity\":1}]}"
checkout_answer=$answer
order_id=$(field orderId <"$work/order.json" || true)
echo "canary order: ${order_id:-none} (customer $canary, $API_BASE_URL)"
why=$checkout_answer
check "checkout answers 201" [ "$status" = 201 ]
why=$checkout_answer
check "the order has an id" [ -n "$order_id" ]

call "$work/read.json" GET "$API_BASE_URL/api/checkout/$order_id" "${auth[@]}"
read_status=$status
# The order reads back as it was answered but for its audit member (first
# in the canonical document), which shows the receipts of its events. Two
# empty answers (no service) are not the same order.
but_audit() { sed 's/^{"audit":.*},"createdAt":/"createdAt":/' "$1"; }
reads_back() {
  [ "$read_status" = 200 ] && [ -s "$work/order.json" ] \
    && cmp -s <(but_audit "$work/order.json") <(but_audit "$work/read.json")
}
why=$answer
check "reading the order back gives the same bytes after its audit" reads_back

call "$work/keys.json" GET "$API_BASE_URL/api/proof/keys" "${auth[@]}"
keys_answer=$answer
verified=no
"$bin/artifact-publisher" verify-proof "$work/order.json" --keys "$work/keys.json" \
  >"$work/verify-proof.txt" 2>&1 && verified=yes
why="verify-proof: $(output "$work/verify-proof.txt")"$'\n'"$keys_answer"
check "its proof verifies offline with the published key" [ "$verified" = yes ]

"$bin/artifact-publisher" decrypt-delivery "$work/order.json" >"$work/delivery.txt" 2>&1 || true
why="decrypt-delivery: $(output "$work/delivery.txt")"
check "its delivery decrypts with the license key" grep -q "\"orderId\":\"$order_id\"" "$work/delivery.txt"

found=no
for _ in $(seq 1 30); do
  call "$work/search.json" POST "$KERNEL_URL/kernel/audit/search" -H 'Content-Type: application/json' \
    -d "{\"criteria\":{\"orderId\":\"$order_id\"},\"eventType\":\"order.completed\"}"
  if grep -q "\"orderId\":\"$order_id\"" "$work/search.json"; then
    found=yes
    break
  fi
  sleep 0.1
done
why=$answer
check "its order.completed event is in the Kernel within 3 s" [ "$found" = yes ]

delivered=no
for _ in $(seq 1 30); do
  call "$work/delivered.json" GET "$API_BASE_URL/api/checkout/$order_id" "${auth[@]}"
  if grep -q '"receipts":\[[^]]*\],"status":"delivered"' "$work/delivered.json"; then
    delivered=yes
    break
  fi
  sleep 0.1
done
why=$answer
check "the order shows its audit delivered within 3 s" [ "$delivered" = yes ]
call "$work/kernel-keys.json" GET "$KERNEL_URL/kernel/keys"
kernel_keys_answer=$answer
verified=no
"$bin/artifact-publisher" verify-proof "$work/delivered.json" --keys "$work/keys.json" \
  --kernel-keys "$work/kernel-keys.json" >"$work/verify-receipts.txt" 2>&1 && verified=yes
why="verify-proof: $(output "$work/verify-receipts.txt")"$'\n'"$kernel_keys_answer"
check "its audit receipts verify offline with the Kernel's published keys" [ "$verified" = yes ]

echo "canary order ids: ${order_id:-none}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
