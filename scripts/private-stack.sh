#!/usr/bin/env bash
# Sourced by scripts that start a private stack: `ap_private_stack NAME`
# makes the working directory $work (/tmp/artifact-publisher-NAME.*), an
# empty list $pids for the processes started (append with pids+=($!)), and
# on exit stops them and the PostgreSQL under $work/pg, then removes $work.
ap_private_stack() {  # NAME
  work=$(mktemp -d "/tmp/artifact-publisher-$1.XXXXXX")
  chmod 755 "$work"
  pids=()
  trap ap_private_stack_cleanup EXIT
}

ap_private_stack_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -d "$work/pg" ] && scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
