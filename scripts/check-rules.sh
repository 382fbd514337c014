#!/usr/bin/env bash
# Checks deploy/prometheus/rules.yml: promtool's syntax check and its unit
# tests (deploy/prometheus/rules_test.yml), every alert tested, every metric
# the rules read one the service exports, and every runbook link a section of
# docs/runbooks/.
set -euo pipefail
cd "$(dirname "$0")/.."
rules=deploy/prometheus/rules.yml
tests=deploy/prometheus/rules_test.yml
command -v promtool >/dev/null || { echo "promtool is missing (Debian package prometheus)" >&2; exit 1; }
promtool check rules "$rules"
promtool test rules "$tests"

status=0
# Each alert fires in at least one test (a non-empty exp_alerts under its name).
for alert in $(grep -o 'alert: [A-Za-z]*' "$rules" | cut -d' ' -f2); do
  awk -v a="$alert" '
    $0 ~ "alertname: " a "$" { inside = 1; next }
    inside && /alertname:/ { inside = 0 }
    inside && /exp_labels:/ { found = 1 }
    END { exit !found }' "$tests" || { echo "$alert: no test where it fires"; status=1; }
done
# Each metric is one the service registers (a rename would silence an alert).
for metric in $(grep -o 'ap_[a-z_]*' "$rules" | sort -u); do
  base=$(sed -E 's/_(bucket|count|sum)$//' <<<"$metric")
  grep -rqs --include='*.cpp' "\"$base\"" actors core http persistence upstream app \
    || { echo "$metric: no such metric in the service"; status=1; }
done
# Each runbook link names a heading of the file it points into.
while read -r url; do
  file=${url%%#*}
  anchor=${url#*#}
  [ -f "$file" ] || { echo "$url: no file $file"; status=1; continue; }
  grep -E '^#+ ' "$file" | sed -E 's/^#+ //' | tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9 _-]//g; s/ /-/g' \
    | grep -qx "$anchor" || { echo "$url: no such section"; status=1; }
done < <(grep -o 'runbook_url: .*' "$rules" | cut -d' ' -f2)
[ "$status" = 0 ] && echo "rules: every alert tested, every metric exported, every runbook found"
exit "$status"
