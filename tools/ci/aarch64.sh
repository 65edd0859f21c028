#!/usr/bin/env bash
# The aarch64 leg of CI: cross-build the whole project with the Debian arm64 toolchain, then
# run the Check suite under qemu-aarch64 user mode, on two emulated CPUs:
#   max          (qemu's default: SVE, SVE2, BF16, FP16, dotprod)
#   neoverse-n1  (a Graviton2 / Ampere Altra class core: NEON, FP16, dotprod, no SVE)
# ctest runs the suite with AUTO (which must pick NEON), forced NEON, forced scalar and a bogus
# SPATTN_ISA. Random sweeps are shrunk (SPATTN_TEST_SCALE) since every case runs emulated.
#   tools/ci/aarch64.sh                 build dir build-aarch64/, or $SPATTN_AARCH64_BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)

bash tools/install-deps.sh build test cross

build=${SPATTN_AARCH64_BUILD_DIR:-build-aarch64}
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DSPATTN_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

# clang has no arm64 OpenMP runtime here, so it cannot link the project; it still compiles
# the Arm sources with the project's warnings, as the native clang build does for the rest.
if command -v clang >/dev/null; then
  for f in src/arm/*.c; do
    clang --target=aarch64-linux-gnu -std=c11 -O2 -Wall -Wextra -Wpedantic -Wshadow \
      -Wstrict-prototypes -Wmissing-prototypes -Werror -Iinclude -Isrc \
      -I"$build/src/generated" -fsyntax-only "$f"
  done
  echo "clang (aarch64): src/arm compiles warning-free"
fi

export SPATTN_TEST_SCALE=${SPATTN_TEST_SCALE:-0.5}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for cpu in max neoverse-n1; do
  echo "== qemu-aarch64, QEMU_CPU=$cpu"
  info=$(QEMU_CPU=$cpu qemu-aarch64 "$build/tools/spattn-info")
  echo "$info"
  # Both emulated CPUs run every ISA the cross build compiles, so AUTO must pick the best one:
  # the first that spattn-info --isas lists (best first).
  best=$(QEMU_CPU=$cpu qemu-aarch64 "$build/tools/spattn-info" --isas | head -n1) || best=
  if [ -z "$best" ]; then
    echo "aarch64: spattn-info --isas lists no ISA" >&2
    status=1
  elif ! grep -Eq "^ *$best +available: yes" <<<"$info" ||
       ! grep -q "^auto selects: $best\$" <<<"$info"; then
    echo "aarch64: spattn-info does not report $best (the best compiled ISA) available and selected" >&2
    status=1
  fi
  if ! QEMU_CPU=$cpu ctest --test-dir "$build" --output-on-failure -j2 >"$log" 2>&1; then
    status=1
  fi
  grep -E 'tests passed|tests failed|\*\*\*Failed|Failed|Skipped' "$log" || true
  # Check's own counts per ctest test, and every failed check.
  awk '/^[0-9]+\/[0-9]+ Testing: /{name=$3} /Checks: [0-9]+/{print "  " name ": " $0}
       /:[FE]:/{print "    " $0}' "$build/Testing/Temporary/LastTest.log"
done

echo "aarch64 CI step: $(( $(date +%s) - start )) s"
exit $status
