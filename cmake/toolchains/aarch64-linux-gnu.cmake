# Cross build for 64-bit Arm Linux from a Debian x86-64 host (multiarch arm64 packages:
# tools/install-deps.sh cross). Test binaries run through qemu-aarch64 user mode; ctest does
# that by itself via CMAKE_CROSSCOMPILING_EMULATOR.
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(SPATTN_CROSS_TRIPLE aarch64-linux-gnu)
if(NOT CMAKE_C_COMPILER)
  set(CMAKE_C_COMPILER ${SPATTN_CROSS_TRIPLE}-gcc)
endif()
if(NOT CMAKE_CXX_COMPILER)
  set(CMAKE_CXX_COMPILER ${SPATTN_CROSS_TRIPLE}-g++)
endif()
# Used by clang only (-DCMAKE_C_COMPILER=clang); gcc ignores it.
set(CMAKE_C_COMPILER_TARGET ${SPATTN_CROSS_TRIPLE})
set(CMAKE_CXX_COMPILER_TARGET ${SPATTN_CROSS_TRIPLE})

# Debian's arm64 libraries live in the multiarch directories of the host's own /usr, so no
# sysroot: the search stays on /usr with the aarch64 library architecture, and pkg-config
# reads the arm64 .pc files.
set(CMAKE_LIBRARY_ARCHITECTURE ${SPATTN_CROSS_TRIPLE})
set(PKG_CONFIG_EXECUTABLE /usr/bin/${SPATTN_CROSS_TRIPLE}-pkg-config CACHE FILEPATH
    "pkg-config for the target")

# No -L: qemu then uses the multiarch loader and libc, which match. With
# -L /usr/aarch64-linux-gnu the cross loader and the multiarch libc differ and Check's fork
# mode hangs. Pick the emulated CPU with the QEMU_CPU environment variable (a -cpu flag here
# would override it).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
