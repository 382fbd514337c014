#!/usr/bin/env bash
# Checks deploy/artifact-publisher.service with systemd-analyze verify (any
# complaint fails), pointing it at the built binary, that the environment
# template names only variables the service reads, and that the service
# accepts the template once filled in and read as the runbook reads it.
#   scripts/check-deploy.sh BUILD_BIN_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/bin}
bin=$(cd "$bin" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|/usr/local/bin/artifact-publisher|$bin/artifact-publisher|g" deploy/artifact-publisher.service \
  >"$work/artifact-publisher.service"
out=$(systemd-analyze verify "$work/artifact-publisher.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "systemd-analyze verify complained:"
  echo "$out"
  exit 1
fi
# Every variable of the template is documented in the README.
status=0
for var in $(grep -o '^ARTIFACT_PUBLISHER_[A-Z_]*' deploy/artifact-publisher.env); do
  name=${var#ARTIFACT_PUBLISHER_}
  grep -q "\`$name\`" README.md || { echo "deploy/artifact-publisher.env: $var is not in the README"; status=1; }
done

# The template as the deployment runbook uses it (`set -a; . FILE; set +a`),
# in a clean environment: as shipped, the service refuses its placeholders,
# naming them; filled in (and with its JSON example line in use), the
# service's own check accepts it and the JSON arrives intact.
secret=filled-in-secret-0123456789abcdef0123456789
proof_secrets='{"v2":"second-proof-secret-0123456789abcdef01"}'
printf '%s\n' "$secret-kernel" >"$work/kernel-token"
cat >"$work/approvers.json" <<'JSON'
[{"id":"alice","publicKey":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
 {"id":"bob","publicKey":"PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="}]
JSON
sed -e "s|/etc/artifact-publisher/|$work/|g" deploy/artifact-publisher.env >"$work/shipped.env"
sed -e "s|CHANGE_ME|$secret|g" \
    -e "/^# ARTIFACT_PUBLISHER_PROOF_SECRETS=/{s|^# ||;s|\.\.\.|second-proof-secret-0123456789abcdef01|;}" \
    "$work/shipped.env" >"$work/filled.env"
check_config() {
  env -i PATH="$PATH" bash -c 'set -a; . "$1"; set +a
    [ -z "${ARTIFACT_PUBLISHER_PROOF_SECRETS+x}" ] || [ "$ARTIFACT_PUBLISHER_PROOF_SECRETS" = "$2" ] ||
      { echo "ARTIFACT_PUBLISHER_PROOF_SECRETS arrived as: $ARTIFACT_PUBLISHER_PROOF_SECRETS"; exit 3; }
    exec "$3" check-config' check "$1" "$proof_secrets" "$bin/artifact-publisher" 2>&1
}
if out=$(check_config "$work/shipped.env"); then
  echo "deploy/artifact-publisher.env: accepted with its placeholders:"; echo "$out"; status=1
elif ! grep -q 'ARTIFACT_PUBLISHER_PROOF_SECRET: still holds the placeholder CHANGE_ME' <<<"$out"; then
  echo "deploy/artifact-publisher.env: its placeholders are not named:"; echo "$out"; status=1
fi
if ! out=$(check_config "$work/filled.env"); then
  echo "deploy/artifact-publisher.env, filled in and sourced as the runbook does, is refused:"
  echo "$out"; status=1
elif ! grep -q 'env=production .*proof_secrets=v2 ' <<<"$out"; then
  echo "deploy/artifact-publisher.env, filled in: not read as expected:"; echo "$out"; status=1
fi
[ "$status" = 0 ] && echo "deploy: unit and environment template check out"
exit "$status"
