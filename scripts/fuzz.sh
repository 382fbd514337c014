#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan), replays the
# saved regressions and seed corpora, then fuzzes each target for a bounded time.
#
# Usage: scripts/fuzz.sh [target...]
#   targets            default: fuzz_request fuzz_canonical_json fuzz_proof fuzz_multisig fuzz_http
#                      fuzz_ed25519
#   FUZZ_SECONDS=30    fuzzing time per target; 0 replays only
#   AP_BUILD_JOBS=1    parallel compile jobs
#   FUZZ_BUILD_DIR=build-fuzz
#
# Targets run one after another, never in parallel. New corpus entries and
# crash artifacts go to a temporary directory, never into the repository; on
# a failure that directory is kept and each artifact is printed with its
# base64, to be saved under fuzz/regressions/<target>/ once understood.
# Exits non-zero when a replay or a fuzzing run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# shellcheck source=scripts/deps.sh
source scripts/deps.sh
# clang-14 alone omits the sanitizer and libFuzzer runtimes
# (libclang-rt-14-dev); FuzzedDataProvider.h comes with libclang-common-14-dev.
AP_PACKAGES=(clang clang-14 libclang-rt-14-dev)
ap_install_missing

all_targets=(fuzz_request fuzz_canonical_json fuzz_proof fuzz_multisig fuzz_http fuzz_ed25519)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz/$t.cpp" ] || { echo "unknown target: $t (have: ${all_targets[*]})" >&2; exit 2; }
done

seconds=${FUZZ_SECONDS:-30}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "FUZZ_SECONDS must be a whole number of seconds" >&2; exit 2; }
build=${FUZZ_BUILD_DIR:-build-fuzz}

echo "== building ${targets[*]} in $build"
started=$SECONDS
CC=clang CXX=clang++ nice -n 19 cmake -S . -B "$build" -DAP_FUZZ=ON -DBUILD_TESTING=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice -n 19 cmake --build "$build" -j"${AP_BUILD_JOBS:-1}" --target "${targets[@]}"
echo "== build took $((SECONDS - started)) s"

work=$(mktemp -d -t ap-fuzz.XXXXXX)
keep_work=0
trap '[ "$keep_work" = 1 ] || rm -rf "$work"' EXIT

# Tokens of the request, proposal and proof formats: without them the fuzzer
# takes long to spell a field name.
cat >"$work/json.dict" <<'EOF'
"{"
"}"
"["
"]"
":"
","
"\""
"\\"
"\\u"
"\\u0000"
"\\ud83d\\ude00"
"true"
"false"
"null"
"-0"
"1.5"
"1e3"
"9223372036854775807"
"-9223372036854775808"
"18446744073709551615"
"\"customerId\""
"\"email\""
"\"currency\""
"\"items\""
"\"sku\""
"\"quantity\""
"\"paymentMethod\""
"\"buyerPublicKey\""
"\"pm_card_visa\""
"\"pm_card_chargeDeclined\""
"\"usd\""
"\"creator-basic\""
"\"creator-pro\""
"\"artifact-license\""
"\"artifact-compliance\""
"-----BEGIN PUBLIC KEY-----\x0a"
"\x0a-----END PUBLIC KEY-----"
"\"version\""
"\"binaryHash\""
"\"notes\""
"\"approvers\""
"\"kind\""
"\"upgrade\""
"\"secret-rotation\""
"\"alice\""
"\"bob\""
"\"approvals\""
"\"upgradeId\""
"\"payloadHash\""
"\"threshold\""
"\"algorithm\""
"\"hmac-sha256\""
"\"ed25519\""
"\"kid\""
"\"v1\""
"\"v2\""
"\"signature\""
"\"payload\""
"\"proofId\""
"\"proof_\""
"\"issuedAt\""
EOF

# Tokens of HTTP/1.1 framing for fuzz_http: methods, framing headers, and the
# line endings and separators the parser must judge.
cat >"$work/http.dict" <<'EOF'
"GET"
"HEAD"
"POST"
"PUT"
"DELETE"
"OPTIONS"
"PATCH"
"TRACE"
"CONNECT"
" HTTP/1.1\x0d\x0a"
" HTTP/1.0\x0d\x0a"
"\x0d\x0a"
"\x0d\x0a\x0d\x0a"
"\x0a"
": "
"\x0d\x0a "
"Host: x\x0d\x0a"
"Transfer-Encoding: "
"Content-Length: "
"Connection: close"
"Connection: keep-alive"
"Content-Type: application/json"
"Authorization: Bearer fuzz-api-token"
"Authorization: Bearer fuzz-admin-token"
"chunked"
"identity"
"gzip"
", "
"0\x0d\x0a\x0d\x0a"
"ffffffffffffffff"
";ext=1"
"/health"
"/readyz"
"/metrics"
"/api/checkout"
"/api/checkout/order_0123456789abcdef0123456789ab"
"/api/multisig/upgrades/"
"/approvals"
"/apply"
"/api/proof/verify"
"/api/sandbox/run"
EOF

failures=()

# Prints what a failed run left behind: the report and each artifact.
report_failure() {
  local target=$1 log=$2 artifacts=$3
  echo "!! $target failed; full log: $log"
  grep -m1 -A30 -E 'property violated|runtime error|==[0-9]+==ERROR|ERROR: libFuzzer' "$log" || tail -n 30 "$log"
  local f
  for f in "$artifacts"/*; do
    [ -f "$f" ] || continue
    echo "artifact: $f"
    echo "base64:   $(base64 -w0 "$f")"
  done
}

for t in "${targets[@]}"; do
  bin="$build/bin/$t"
  mkdir -p "$work/artifacts/$t" "$work/corpus/$t"
  common=(-timeout=5 -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/$t/")
  dict=()
  case $t in
    fuzz_multisig | fuzz_ed25519) ;;
    fuzz_http) dict=(-dict="$work/http.dict") ;;
    *) dict=(-dict="$work/json.dict") ;;
  esac

  # Given files (not directories) as arguments, libFuzzer only executes them.
  mapfile -t inputs < <(find "fuzz/regressions/$t" "fuzz/corpus/$t" -type f ! -name '.*' 2>/dev/null | sort)
  if [ ${#inputs[@]} -gt 0 ]; then
    echo "== $t: replaying ${#inputs[@]} saved inputs"
    log="$work/$t.replay.log"
    if "$bin" "${common[@]}" "${inputs[@]}" >"$log" 2>&1; then
      echo "   all pass"
    else
      failures+=("$t replay")
      report_failure "$t" "$log" "$work/artifacts/$t"
      # A replayed input that fails is its own artifact.
      last=$(grep -E '^Running: ' "$log" | tail -n 1 | sed 's/^Running: //')
      if [ -n "$last" ]; then
        echo "failing input: $root/$last"
        echo "base64:        $(base64 -w0 "$last")"
      fi
    fi
  fi

  [ "$seconds" -gt 0 ] || continue
  echo "== $t: fuzzing for $seconds s"
  # Seeds only: a saved regression that still fails would end the run at once.
  find "fuzz/corpus/$t" -type f ! -name '.*' -exec cp {} "$work/corpus/$t/" \; 2>/dev/null || true
  log="$work/$t.fuzz.log"
  if "$bin" "${common[@]}" "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
       "$work/corpus/$t" >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "$log" | sed 's/^/   /'
  else
    failures+=("$t fuzz")
    report_failure "$t" "$log" "$work/artifacts/$t"
  fi
done

if [ ${#failures[@]} -gt 0 ]; then
  keep_work=1
  echo "FAILED: ${failures[*]} (logs and artifacts kept in $work)"
  exit 1
fi
echo "all fuzz targets passed"
