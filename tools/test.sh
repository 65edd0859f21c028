#!/usr/bin/env bash
# Builds spattn with warnings as errors and runs every test (ctest: the Check suite with AUTO,
# once per forced ISA, the SPATTN_ISA checks, the MPI example), then the Python package's
# tests in a fresh virtual environment (tools/ci/python.sh; SPATTN_TEST_PYTHON=0 skips them).
# Installs its Debian packages first.
#   tools/test.sh [build-dir]        (default: build)
# CC=clang tools/test.sh build-clang  builds with clang instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh build test mpi
dir=${1:-build}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSPATTN_WERROR=ON -DSPATTN_BUILD_TESTS=ON ${SPATTN_CMAKE_ARGS:-}
cmake --build "$dir" -j"$(nproc)"
"$dir"/tools/spattn-info || true
# --no-tests=error: a build directory configured without tests must not pass as green.
ctest --test-dir "$dir" --output-on-failure --no-tests=error -j"$(nproc)"
if [ "${SPATTN_TEST_PYTHON:-1}" != 0 ]; then
  bash tools/ci/python.sh
fi
