#!/usr/bin/env bash
# Valgrind memcheck CI step. Valgrind 3.19 emulates AVX2 but not AVX-512 (its CPUID reports no
# avx512f), so this also proves that AUTO falls back cleanly: spattn-info under valgrind must
# select another compiled ISA and the suite must pass with AUTO.
# Kept short (SPATTN_TEST_SCALE small): memcheck runs code ~50x slower.
# Usage: tools/ci/valgrind.sh [build-dir]     (default: build-valgrind, RelWithDebInfo)
set -uo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build-valgrind}
jobs=${JOBS:-2}
"$here/tools/install-deps.sh" build test || exit 1

# A build directory that is already configured (CI passes the native tests' Release build) is
# used as it is: configuring it again would rebuild every kernel for nothing.
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPATTN_WERROR=ON \
    >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; echo "valgrind.sh: FAIL"; exit 1; }
fi
cmake --build "$build" -j "$jobs" --target spattn-tests spattn-info ||
  { echo "valgrind.sh: FAIL (build)"; exit 1; }

# Definite leaks and every memory error fail; libgomp's thread pool is still reachable at exit.
vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-origins=yes
    --num-callers=30 --quiet)
export SPATTN_TEST_SCALE=${SPATTN_TEST_SCALE:-0.05}
export CK_FORK=no    # one process: memcheck follows every test, and leaks are seen at exit
export CK_DEFAULT_TIMEOUT=0

logs=$build/logs
mkdir -p "$logs"
. "$here/tools/ci/steps.sh"

# AUTO's pick under valgrind must be the best compiled ISA (spattn-info --isas, best first) that
# valgrind's CPU can run, as spattn-info under valgrind reports it.
auto_falls_back() {
  local out isa best=
  out=$("${vg[@]}" "$build/tools/spattn-info") || { echo "$out"; return 1; }
  echo "$out"
  for isa in $("$build/tools/spattn-info" --isas); do
    if grep -Eq "^ *$isa +available: yes$" <<<"$out"; then
      best=$isa
      break
    fi
  done
  [ -n "$best" ] && grep -qx "auto selects: $best" <<<"$out"
}
step "spattn-info under valgrind: AUTO picks the best ISA valgrind runs" auto_falls_back
# The whole suite with AUTO: its per-ISA loops cover every ISA valgrind can run, and the
# hostile and concurrency suites run too. One memcheck process per suite, two at a time
# (memcheck runs one thread at a time, so a process per core halves the wall time).
all_suites() {
  local suites
  suites=$(sed -n 's/^SPATTN_SUITE(suite_\(.*\))$/\1/p' "$here/tests/suites.inc")
  [ -n "$suites" ] || { echo "no suites found in tests/suites.inc"; return 1; }
  export build
  # shellcheck disable=SC2016
  printf '%s\n' $suites | xargs -P "$jobs" -I{} bash -c \
    'out=$(CK_RUN_SUITE={} "$@" "$build/tests/spattn-tests" 2>&1); rc=$?;
     if [ $rc = 0 ]; then printf "%s\n" "$out" | tail -n 2; else printf "%s\n" "$out"; fi
     echo "suite {}: exit $rc"; exit $((rc != 0))' _ "${vg[@]}"
}
step "memcheck: every suite, AUTO" all_suites

summary valgrind.sh
