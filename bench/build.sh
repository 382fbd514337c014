#!/usr/bin/env bash
# The cost of a cold build: builds a revision (default: the working tree's
# HEAD) from scratch in a temporary worktree, without ccache, and prints the
# wall time, the CPU seconds summed over every compiler run and the peak
# memory of the largest one, with the five most expensive units.
#
#   bench/build.sh [REV]          JOBS=2 by default; RESULT=FILE keeps the per-unit table
#
# CPU seconds and peak memory do not depend on what else runs on the
# machine; the wall time does, so compare revisions on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-HEAD}
jobs=${JOBS:-2}
work=$(mktemp -d /tmp/ap-build-cost.XXXXXX)
cleanup() { git worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
git worktree add --detach "$work/src" "$rev" >/dev/null 2>&1
table="$work/units.tsv"
: >"$table"
# Every compiler run goes through /usr/bin/time: user+sys seconds, peak KB,
# source. The wrapper is the compiler itself, so it measures whatever
# launcher the build configures; ccache is told to step aside.
cat >"$work/g++" <<WRAP
#!/usr/bin/env bash
src=unknown
for a in "\$@"; do case "\$a" in $work/src/*.cpp) src="\$a";; esac; done
exec /usr/bin/time -a -o "$table" -f "%U %S %M \$src" g++ "\$@"
WRAP
chmod +x "$work/g++"
export CCACHE_DISABLE=1
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$work/g++" >/dev/null
: >"$table"  # not the compiler checks
start=$(date +%s.%N)
cmake --build "$work/build" -j"$jobs" >/dev/null
end=$(date +%s.%N)
# Link steps have no .cpp argument: they count towards the total only.
awk -v wall="$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')" -v rev="$(git rev-parse --short "$rev")" '
  { cpu = $1 + $2; total += cpu; if ($4 != "unknown") units++
    if ($3 > peak) { peak = $3; peak_src = $4 } }
  END { printf "build of %s: wall %.0f s, compiler+linker CPU %.0f s over %d units, peak %.0f MB (%s)\n",
               rev, wall, total, units, peak / 1024, peak_src }' "$table"
sort -k1,1nr "$table" | awk '$4 != "unknown" { sub(".*/src/", "", $4); printf "  %6.1f s  %5.0f MB  %s\n", $1 + $2, $3 / 1024, $4 }' | head -5
if [ -n "${RESULT:-}" ]; then sed "s#$work/src/##" "$table" >"$RESULT"; fi
