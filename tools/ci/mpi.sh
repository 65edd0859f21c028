#!/usr/bin/env bash
# MPI CI step: builds examples/mpi/ring_attention (spattn-ring-attention) and runs it with 1, 2
# and 4 ranks on this machine (oversubscribed when it has fewer cores). Every run checks
# itself (the ring against the same shards in one process, bit for bit, and against one
# spattn_forward of the whole problem) and exits non-zero on a mismatch.
# Usage: tools/ci/mpi.sh [build-dir]     (default: build-mpi)
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build-mpi}
"$here/tools/install-deps.sh" mpi

# An existing build directory (CI passes the native step's, which builds the examples) is
# used as it is configured.
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPATTN_WERROR=ON \
    -DSPATTN_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j"${JOBS:-2}" --target spattn-ring-attention

flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
for np in 1 2 4; do
  echo "--- $np rank(s)"
  mpirun "${flags[@]}" -np "$np" "$build/examples/spattn-ring-attention"
  # One contiguous chunk per rank, a length that does not divide evenly, MQA.
  mpirun "${flags[@]}" -np "$np" "$build/examples/spattn-ring-attention" --layout contiguous \
    --len 1001 --heads 6 --kv-heads 1 --dim 40 --reps 1
done
echo "mpi.sh: PASS"
