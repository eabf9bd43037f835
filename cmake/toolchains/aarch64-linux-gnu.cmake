# aarch64 builds. On an aarch64 host this file changes nothing (native build); on
# any other host it cross-compiles with Debian's aarch64-linux-gnu toolchain and runs
# the tests under qemu-aarch64 emulating the newest CPU (-cpu max: SVE2, dotprod).
if(CMAKE_HOST_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  return()
endif()

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
# Header-only dependencies (xsimd, dlpack) come from the build host's /usr/include.
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(TVOPS_QEMU_AARCH64 qemu-aarch64)
if(TVOPS_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${TVOPS_QEMU_AARCH64};-cpu;max;-L;/usr/aarch64-linux-gnu")
endif()
