#!/usr/bin/env bash
# The one list of Debian packages spattn needs. The README's commands and CI both call this.
#   tools/install-deps.sh [build] [test] [bench] [cross] [fuzz] [mpi] [python] [all]
# Without arguments: build + test. Needs root (or sudo) and Debian 12's package archive.
set -euo pipefail

want_build=0 want_test=0 want_bench=0 want_cross=0 want_fuzz=0 want_mpi=0
want_python=0
[ $# -eq 0 ] && set -- build test
for a in "$@"; do
  case "$a" in
    build) want_build=1 ;;
    test) want_build=1; want_test=1 ;;
    bench) want_build=1; want_bench=1 ;;
    cross) want_cross=1 ;;
    fuzz) want_fuzz=1 ;;
    mpi) want_build=1; want_mpi=1 ;;
    python) want_build=1; want_python=1 ;;
    all) want_build=1; want_test=1; want_bench=1; want_cross=1; want_fuzz=1; want_mpi=1; want_python=1 ;;
    *) echo "install-deps.sh: unknown group '$a'" >&2; exit 2 ;;
  esac
done

pkgs=()
[ $want_build = 1 ] && pkgs+=(build-essential cmake pkg-config libsleef-dev libpng-dev)
[ $want_test = 1 ] && pkgs+=(check clang clang-format libomp-14-dev libclang-rt-14-dev valgrind
                              python3)
[ $want_bench = 1 ] && pkgs+=(g++ libbenchmark-dev libopenblas-dev gnuplot-nox python3)
[ $want_fuzz = 1 ] && pkgs+=(clang libclang-rt-14-dev libomp-14-dev)
# Open MPI for examples/mpi (sequence-parallel attention across processes).
[ $want_mpi = 1 ] && pkgs+=(libopenmpi-dev openmpi-bin)
# The Python package: pip install ./python in a virtual environment of Debian's python3.
[ $want_python = 1 ] && pkgs+=(python3 python3-venv python3-dev)
cross_pkgs=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user libsleef-dev:arm64
            check:arm64 libc6:arm64 pkgconf:arm64 libgomp1:arm64)

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ $want_cross = 1 ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    missing+=("${cross_pkgs[@]}")
  else
    for p in "${cross_pkgs[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
