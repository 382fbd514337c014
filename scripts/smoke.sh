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
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
bin=${AP_BIN_DIR:-build/bin}
[ -x "$bin/artifact-publisher" ] || { echo "smoke: build first (build/bin/artifact-publisher)" >&2; exit 2; }
command -v curl >/dev/null || { echo "smoke: curl is needed (apt-get install curl)" >&2; exit 2; }

# shellcheck source=scripts/private-stack.sh
source scripts/private-stack.sh
ap_private_stack smoke

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
check() {  # check NAME COMMAND...
  if "${@:2}"; then
    echo "ok   $1"
    passed=$((passed + 1))
  else
    echo "FAIL $1"
    failed=$((failed + 1))
  fi
}
field() {  # field NAME < json: the first string value of NAME
  grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4
}

canary="canary-$(date +%s)-$$"
status=$(curl -s -o "$work/order.json" -w '%{http_code}' -X POST "$API_BASE_URL/api/checkout" \
  "${auth[@]}" -H 'Content-Type: application/json' -H "Idempotency-Key: $canary" \
  -d "{\"customerId\":\"$canary\",\"email\":\"canary@example.com\",\"currency\":\"usd\",\"items\":[{\"sku\":\"artifact-license\",\"quantity\":1}]}")
order_id=$(field orderId <"$work/order.json" || true)
echo "canary order: ${order_id:-none} (customer $canary, $API_BASE_URL)"
check "checkout answers 201" [ "$status" = 201 ]
check "the order has an id" [ -n "$order_id" ]

curl -s "${auth[@]}" "$API_BASE_URL/api/checkout/$order_id" -o "$work/read.json"
# The order reads back as it was answered but for its audit member (first
# in the canonical document), which shows the receipts of its events.
but_audit() { sed 's/^{"audit":.*},"createdAt":/"createdAt":/' "$1"; }
check "reading the order back gives the same bytes after its audit" \
  cmp -s <(but_audit "$work/order.json") <(but_audit "$work/read.json")

curl -s "${auth[@]}" "$API_BASE_URL/api/proof/keys" -o "$work/keys.json"
check "its proof verifies offline with the published key" \
  "$bin/artifact-publisher" verify-proof "$work/order.json" --keys "$work/keys.json"

"$bin/artifact-publisher" decrypt-delivery "$work/order.json" >"$work/delivery.txt" 2>&1 || true
check "its delivery decrypts with the license key" grep -q "\"orderId\":\"$order_id\"" "$work/delivery.txt"

found=no
for _ in $(seq 1 30); do
  if curl -s -X POST "$KERNEL_URL/kernel/audit/search" -H 'Content-Type: application/json' \
       -d "{\"criteria\":{\"orderId\":\"$order_id\"},\"eventType\":\"order.completed\"}" \
       | grep -q "\"orderId\":\"$order_id\""; then
    found=yes
    break
  fi
  sleep 0.1
done
check "its order.completed event is in the Kernel within 3 s" [ "$found" = yes ]

delivered=no
for _ in $(seq 1 30); do
  curl -s "${auth[@]}" "$API_BASE_URL/api/checkout/$order_id" -o "$work/delivered.json"
  if grep -q '"receipts":\[[^]]*\],"status":"delivered"' "$work/delivered.json"; then
    delivered=yes
    break
  fi
  sleep 0.1
done
check "the order shows its audit delivered within 3 s" [ "$delivered" = yes ]
curl -s "$KERNEL_URL/kernel/keys" -o "$work/kernel-keys.json"
check "its audit receipts verify offline with the Kernel's published keys" \
  "$bin/artifact-publisher" verify-proof "$work/delivered.json" --keys "$work/keys.json" \
  --kernel-keys "$work/kernel-keys.json"

echo "canary order ids: $order_id"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
