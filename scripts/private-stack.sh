#!/usr/bin/env bash
# Sourced by scripts that start a private stack: `ap_private_stack NAME`
# makes the working directory $work (/tmp/artifact-publisher-NAME.*), an
# empty list $pids for the processes started (append with pids+=($!)), and
# on exit stops them and the PostgreSQL under $work/pg, then removes $work,
# unless the script fails with ap_keep_work_on_failure=1: then $work stays
# for a look at what it holds, and the script says where.
ap_private_stack() {  # NAME
  work=$(mktemp -d "/tmp/artifact-publisher-$1.XXXXXX")
  chmod 755 "$work"
  pids=()
  ap_private_stack_name=$1
  trap ap_private_stack_cleanup EXIT
}

ap_private_stack_cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -d "$work/pg" ] && scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  if [ "$rc" != 0 ] && [ "${ap_keep_work_on_failure:-0}" = 1 ]; then
    echo "$ap_private_stack_name: failed; its working directory is kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
