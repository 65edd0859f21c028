#!/usr/bin/env bash
# Sanitizer CI step.
#   1. clang, ASan + UBSan (+ LSan): the whole Check suite, every test in one process so that
#      LeakSanitizer sees every allocation at exit (forked test children would each exit on
#      their own). gcc does not instrument AVX-512 masked loads; clang does.
#   2. clang, TSan: the concurrency and split-KV suites, with libomp's Archer tool so that TSan
#      understands OpenMP's synchronisation, and libomp's own (uninstrumented) internals
#      ignored as Archer asks.
# Usage: tools/ci/sanitize.sh [build-root]   (default: build-sanitize under the repository;
#        ASAN_DIR / TSAN_DIR override the two build directories)
set -uo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
root=${1:-$here/build-sanitize}
jobs=${JOBS:-2}
"$here/tools/install-deps.sh" build test fuzz || exit 1

logs=$root/logs
mkdir -p "$logs"
. "$here/tools/ci/steps.sh"

configure_build() { # configure_build DIR SANITIZERS [CMAKE ARGS...]
  mkdir -p "$1"
  local dir=$1 san=$2
  shift 2
  CC=clang cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$opt" \
    -DSPATTN_WERROR=ON \
    -DSPATTN_SANITIZE="$san" "$@" >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; return 1; }
  cmake --build "$dir" -j "$jobs" --target spattn-tests spattn-first-use spattn-info
}

# -O1 (tools/ci/fuzz.sh uses the same): clang at -O2 spent minutes on each ISA's instrumented
# kernel template, most of this step on two cores; at -O1 the build takes about half as long
# and the instrumented suites run as fast. Line tables are all the sanitizers' reports need
# (file, line and inlined frames), for less compile time than full debug information.
opt="-O1 -gline-tables-only -DNDEBUG"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$here/tools/ci/lsan.supp:print_suppressions=0
# Smaller random sweeps: instrumented code is several times slower.
export SPATTN_TEST_SCALE=${SPATTN_TEST_SCALE:-0.6}

asan=${ASAN_DIR:-$root/asan}
# With the fuzzers' coverage instrumentation too, so that tools/ci/fuzz.sh, given this
# directory, builds only its targets on the same objects: an instrumented build of the
# kernels takes minutes on two cores, and CI would otherwise make it twice.
step "asan+ubsan build" configure_build "$asan" address,undefined -DSPATTN_BUILD_FUZZERS=ON \
  "-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link"
if [ $fail = 0 ]; then
  step "asan+ubsan: all suites (AUTO)" env CK_FORK=no "$asan/tests/spattn-tests"
  # Every ISA the build has compiled in, as spattn-info lists them.
  if isas=$("$asan/tools/spattn-info" --isas) && [ -n "$isas" ]; then
    for isa in $isas; do
      # A forced ISA this host lacks exits 77 (skipped).
      run_isa() { SPATTN_ISA=$isa CK_FORK=no CK_RUN_SUITE=attn "$asan/tests/spattn-tests"; local rc=$?; [ $rc = 0 ] || [ $rc = 77 ]; }
      step "asan+ubsan: attn suite, SPATTN_ISA=$isa" run_isa
    done
  else
    step "asan+ubsan: spattn-info --isas lists the compiled ISAs" false
  fi
fi

tsan=${TSAN_DIR:-$root/tsan}
archer=$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | head -n1)
step "tsan build" configure_build "$tsan" thread
if [ -x "$tsan/tests/spattn-tests" ]; then
  step "tsan: concurrency suite" env TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1" \
    ${archer:+OMP_TOOL_LIBRARIES=$archer} CK_FORK=no CK_RUN_SUITE=concurrency \
    "$tsan/tests/spattn-tests"
  # Split-KV plans: segments run on 2, 3 and 8 threads and merged after a barrier, one plan
  # executed from several threads at once.
  step "tsan: split suite" env TSAN_OPTIONS="halt_on_error=1 ignore_noninstrumented_modules=1" \
    ${archer:+OMP_TOOL_LIBRARIES=$archer} CK_FORK=no CK_RUN_SUITE=split \
    "$tsan/tests/spattn-tests"
  step "tsan: first use from 8 threads" env TSAN_OPTIONS="halt_on_error=1 ignore_noninstrumented_modules=1" \
    ${archer:+OMP_TOOL_LIBRARIES=$archer} "$tsan/tests/spattn-first-use"
fi

summary sanitize.sh
