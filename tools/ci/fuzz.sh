#!/usr/bin/env bash
# Fuzzing CI step: builds the libFuzzer targets of tests/fuzz with clang
# (-fsanitize=fuzzer,address,undefined; the library itself instrumented for coverage), then
# runs each for a bounded time from its committed seed corpus. Any crash, sanitizer report,
# failed check (the fuzzers abort on a wrong answer), timeout or OOM fails the step.
# New corpus entries go to a scratch directory, never into the repository.
# Usage: tools/ci/fuzz.sh [build-dir]     FUZZ_SECONDS (default 30) per target.
set -uo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build-fuzz}
seconds=${FUZZ_SECONDS:-30}
jobs=${JOBS:-2}
"$here/tools/install-deps.sh" build fuzz || exit 1

mkdir -p "$build"
t0=$SECONDS
# -O1 as in tools/ci/sanitize.sh, whose ASan build directory CI hands to this script: the same
# flags there mean no object is built twice.
CC=clang cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" -DSPATTN_WERROR=ON -DSPATTN_BUILD_TESTS=OFF \
  -DSPATTN_BUILD_FUZZERS=ON -DSPATTN_SANITIZE=address,undefined \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; echo "fuzz.sh: FAIL (configure)"; exit 1; }
cmake --build "$build" -j "$jobs" || { echo "fuzz.sh: FAIL (build)"; exit 1; }
echo "build: $((SECONDS - t0)) s"

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$here/tools/ci/lsan.supp:print_suppressions=0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary=()
fail=0
for f in "$here"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$f" .c)
  seeds=$here/tests/fuzz/corpus/$name
  if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
    fail=1
    summary+=("FAIL  $name: no seed corpus at tests/fuzz/corpus/$name")
    continue
  fi
  mkdir -p "$work/$name" "$work/$name.artifacts"
  log=$work/$name.log
  echo "=== $name: $seconds s from $(ls "$seeds" | wc -l) seeds"
  # -rss_limit_mb: the inputs are small by construction, so growth means a leak.
  "$build/tests/fuzz/$name" "$work/$name" "$seeds" -max_total_time="$seconds" -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/$name.artifacts/" \
    >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1)
  if [ $rc = 0 ]; then
    summary+=("PASS  $name: ${execs:-?} executions, ${cov:-cov: ?}")
  else
    fail=1
    summary+=("FAIL  $name (exit $rc): ${execs:-?} executions")
    tail -n 60 "$log"
    for a in "$work/$name.artifacts"/*; do
      [ -e "$a" ] || continue
      echo "--- reproducer $(basename "$a") (base64):"
      base64 "$a"
    done
  fi
done

echo
echo "=== fuzz summary ($seconds s per target)"
printf '%s\n' "${summary[@]}"
[ $fail = 0 ] && echo "fuzz.sh: PASS" || echo "fuzz.sh: FAIL"
exit $fail
