#!/usr/bin/env bash
# The Python package: `pip install ./python` into a fresh virtual environment of Debian's
# python3 (the library built by its own CMake through scikit-build-core), then its pytest suite
# run against the installed copy, spattn.torch's tests included: torch comes from PyPI (its
# CPU-only index is not reachable from every machine; PyPI's wheel pulls the CUDA libraries
# too, a few minutes). SPATTN_TEST_TORCH=0 leaves torch out and its tests skip.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bash tools/install-deps.sh python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 -m venv "$work/venv"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
"$work/venv/bin/pip" install -q "$root/python" pytest numpy ml_dtypes
if [ "${SPATTN_TEST_TORCH:-1}" != 0 ]; then
  t0=$(date +%s)
  "$work/venv/bin/pip" install -q torch
  echo "torch installed in $(($(date +%s) - t0)) s"
fi
# From outside the tree, so that `import spattn` can only find the installed package.
cd "$work"
"$work/venv/bin/python" -c 'import spattn; print("spattn", spattn.version, spattn.isas())'
if [ "${SPATTN_TEST_TORCH:-1}" != 0 ]; then
  # Loudly here, rather than as skipped tests, when torch is broken.
  "$work/venv/bin/python" -c 'import torch, spattn.torch; print("torch", torch.__version__)'
fi
"$work/venv/bin/python" -m pytest -q -rs "$root/python/tests"
