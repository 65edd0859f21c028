#!/usr/bin/env bash
# The Python package: `pip install ./python` into a fresh virtual environment of Debian's
# python3 (the library built by its own CMake through scikit-build-core), then its pytest suite
# run against the installed copy.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bash tools/install-deps.sh python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 -m venv "$work/venv"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
"$work/venv/bin/pip" install -q "$root/python" pytest numpy ml_dtypes
# From outside the tree, so that `import spattn` can only find the installed package.
cd "$work"
"$work/venv/bin/python" -c 'import spattn; print("spattn", spattn.version, spattn.isas())'
"$work/venv/bin/python" -m pytest -q -rs "$root/python/tests"
