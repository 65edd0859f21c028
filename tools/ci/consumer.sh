#!/usr/bin/env bash
# Installs spattn (static, then shared) into a scratch prefix and builds a program written only
# against the public API with find_package(spattn) and with pkg-config --static; runs both.
#   tools/ci/consumer.sh [STATIC_BUILD_DIR]
# STATIC_BUILD_DIR: an existing build of the static library (CI passes the native step's) to
# install instead of configuring and building a second one.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/install-deps.sh build
static_build=${1:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for kind in static shared; do
  shared=OFF
  [ $kind = shared ] && shared=ON
  prefix="$work/prefix-$kind"
  build="$work/build-$kind"
  if [ $kind = static ] && [ -n "$static_build" ]; then
    build=$static_build
    grep -q '^BUILD_SHARED_LIBS:BOOL=OFF$' "$build/CMakeCache.txt" ||
      { echo "consumer: $build is not a static build"; exit 1; }
  else
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPATTN_WERROR=ON \
      -DSPATTN_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=$shared -DCMAKE_INSTALL_PREFIX="$prefix"
  fi
  cmake --build "$build" -j"$(nproc)"
  cmake --install "$build" --prefix "$prefix" >/dev/null
  test -f "$prefix/include/spattn.h"
  test -f "$prefix/lib/cmake/spattn/spattnConfig.cmake"
  test -f "$prefix/lib/pkgconfig/spattn.pc"

  cmake -S tests/consumer -B "$work/consumer-$kind" -DCMAKE_PREFIX_PATH="$prefix"
  cmake --build "$work/consumer-$kind"
  LD_LIBRARY_PATH="$prefix/lib" "$work/consumer-$kind/consumer"
done

# spattn-pair-ab (built with the shared library) runs two copies of it against each other;
# one build gives bitwise equal outputs.
cp "$work/prefix-shared/lib/libspattn.so" "$work/a.so"
cp "$work/prefix-shared/lib/libspattn.so" "$work/b.so"
pair=$("$work/build-shared/tools/spattn-pair-ab" "$work/a.so" "$work/b.so" --len 256 \
  --pattern fewkeys --sparsity 97 --dtype bf16 --pairs 3)
echo "$pair"
grep -q "outputs: bitwise equal" <<<"$pair"

# Only spattn_* symbols leave the shared library.
leaked=$(nm -D --defined-only "$work/prefix-shared/lib/libspattn.so" | awk '{print $3}' |
         grep -v '^spattn_' | grep -v '^_' || true)
if [ -n "$leaked" ]; then
  echo "libspattn.so exports non-spattn symbols:"; echo "$leaked"; exit 1
fi

# pkg-config --static links the static build with nothing else named by hand.
export PKG_CONFIG_PATH="$work/prefix-static/lib/pkgconfig"
# The file names the prefix it was installed to, whatever prefix the build was configured with.
pc_inc=$(pkg-config --variable=includedir spattn)
[ "$(cd "$pc_inc" && pwd -P)" = "$(cd "$work/prefix-static/include" && pwd -P)" ] ||
  { echo "consumer: spattn.pc names $pc_inc, not the install prefix"; exit 1; }
cc -std=c11 -O2 tests/consumer/consumer.c -o "$work/consumer-pc" \
  $(pkg-config --cflags spattn) $(pkg-config --static --libs spattn)
"$work/consumer-pc"
echo "consumer: find_package (static, shared) and pkg-config --static all passed"
