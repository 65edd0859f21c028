#!/usr/bin/env bash
# The aarch64 leg of CI: cross-build the whole project with the Debian arm64 toolchain, then
# run the Check suite under qemu-aarch64 user mode, on two emulated CPUs:
#   max          (qemu's default: SVE, SVE2, BF16, FP16, dotprod)
#   neoverse-n1  (a Graviton2 / Ampere Altra class core: NEON, FP16, dotprod, no SVE, no BF16)
# ctest runs the suite with AUTO, each other compiled ISA forced, and a bogus SPATTN_ISA. On
# max AUTO must pick the best compiled ISA (neonbf16, whose BFDOT qemu emulates); on
# neoverse-n1 it must pick neon, and forced neonbf16 must be refused for the missing BF16
# (ctest: skipped). Random sweeps are shrunk (SPATTN_TEST_SCALE) since every case runs
# emulated.
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
    # Each file with its own flags, as src/arm/CMakeLists.txt gives them.
    case $f in
      */attn_neon_bf16.c) march=-march=armv8.2-a+bf16 ;;
      *) march= ;;
    esac
    clang --target=aarch64-linux-gnu -std=c11 -O2 $march -Wall -Wextra -Wpedantic -Wshadow \
      -Wstrict-prototypes -Wmissing-prototypes -Werror -Iinclude -Isrc \
      -I"$build/src/generated" -fsyntax-only "$f"
  done
  echo "clang (aarch64): src/arm compiles warning-free"
fi

export SPATTN_TEST_SCALE=${SPATTN_TEST_SCALE:-0.35}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for cpu in max neoverse-n1; do
  echo "== qemu-aarch64, QEMU_CPU=$cpu"
  info=$(QEMU_CPU=$cpu qemu-aarch64 "$build/tools/spattn-info")
  echo "$info"
  # AUTO must pick the best available ISA: the first of spattn-info --isas (best first) that
  # it reports available. max runs every ISA the cross build compiles; neoverse-n1 all but
  # neonbf16, which it must refuse for the missing BF16.
  isas=$(QEMU_CPU=$cpu qemu-aarch64 "$build/tools/spattn-info" --isas) || isas=
  best=
  for isa in $isas; do
    if grep -Eq "^ *$isa +available: yes$" <<<"$info"; then
      best=$isa
      break
    fi
  done
  if [ -z "$best" ]; then
    echo "aarch64: spattn-info reports no compiled ISA available" >&2
    status=1
  elif ! grep -q "^auto selects: $best\$" <<<"$info"; then
    echo "aarch64: AUTO does not select $best, the best available ISA" >&2
    status=1
  fi
  if [ "$cpu" = max ] && [ "$best" != "$(head -n1 <<<"$isas")" ]; then
    echo "aarch64: on max, $(head -n1 <<<"$isas") (the best compiled ISA) is not available" >&2
    status=1
  fi
  if [ "$cpu" = neoverse-n1 ] && grep -qx neonbf16 <<<"$isas" &&
     ! grep -Eq "^ *neonbf16 +available: no \(CPU lacks BF16 \(bfdot\)\)" <<<"$info"; then
    echo "aarch64: on neoverse-n1, neonbf16 is not refused for the missing BF16" >&2
    status=1
  fi
  # The spattn-suite-* entries run every suite with AUTO, that is on $best, two at a time
  # (-j2); the forced entry of $best would only run its attn suite again under emulation, so
  # it is left out (the other ISAs' forced entries run, and neonbf16's is skipped on
  # neoverse-n1 for the missing BF16).
  if ! QEMU_CPU=$cpu ctest --test-dir "$build" --output-on-failure -j2 \
    -E "^spattn-tests-isa-$best\$" >"$log" 2>&1; then
    status=1
  fi
  grep -E 'tests passed|tests failed|\*\*\*Failed|Failed|Skipped' "$log" || true
  # Check's own counts per ctest test, and every failed check.
  awk '/^[0-9]+\/[0-9]+ Testing: /{name=$3} /Checks: [0-9]+/{print "  " name ": " $0}
       /:[FE]:/{print "    " $0}' "$build/Testing/Temporary/LastTest.log"
done

echo "aarch64 CI step: $(( $(date +%s) - start )) s"
exit $status
