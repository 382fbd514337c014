#!/usr/bin/env bash
# Checks deploy/artifact-publisher.service with systemd-analyze verify (any
# complaint fails), pointing it at the built binary, and that the environment
# template names only variables the service reads.
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
[ "$status" = 0 ] && echo "deploy: unit and environment template check out"
exit "$status"
