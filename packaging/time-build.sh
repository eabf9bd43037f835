#!/usr/bin/env bash
# Times a clean release build of one variant preset: the library and the Python module,
# no tests, compiled from nothing (ccache, if any, recompiles every file: CCACHE_RECACHE).
# Prints the minutes. On the GPU machine, carry .devdeps/ and .whl/ as for .ci/gpu-machine.sh.
#
#   packaging/time-build.sh PRESET [JOBS]      # e.g. sm90-avx512 16; JOBS defaults to nproc
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:?usage: packaging/time-build.sh PRESET [JOBS]}
jobs=${2:-$(nproc)}
dir=build/time-$preset
args=(-DTVOPS_BUILD_TESTS=OFF -DTVOPS_BUILD_BENCHMARKS=OFF)

# The GPU machine lacks xsimd/dlpack and pybind11: take them from .devdeps/ and .whl/ when carried.
if compgen -G ".devdeps/*.deb" >/dev/null; then
  mkdir -p .devdeps/root
  for f in .devdeps/*.deb; do dpkg -x "$f" .devdeps/root; done
  args+=(-DCMAKE_PREFIX_PATH="$PWD/.devdeps/root/usr")
fi
if compgen -G ".whl/pybind11-*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/tvops-site .whl/pybind11-*.whl
  export PYTHONPATH=/tmp/tvops-site${PYTHONPATH:+:$PYTHONPATH}
fi
py=$( [ -x .venv/bin/python ] && echo "$PWD/.venv/bin/python" || command -v python3 )
if pybind11_dir=$("$py" -m pybind11 --cmakedir 2>/dev/null); then
  args+=(-DPython3_EXECUTABLE="$py" -Dpybind11_DIR="$pybind11_dir" -DTVOPS_BUILD_PYTHON=ON)
fi

rm -rf "$dir"
t0=$(date +%s.%N)
cmake --preset "$preset" -B "$dir" "${args[@]}" > "$dir.configure.log" 2>&1 ||
  { tail -20 "$dir.configure.log"; exit 1; }
t1=$(date +%s.%N)
CCACHE_RECACHE=1 cmake --build "$dir" -j "$jobs" > "$dir.build.log" 2>&1 ||
  { grep -E "error|FAILED" "$dir.build.log" | head -20; exit 1; }
t2=$(date +%s.%N)
python_module=$( compgen -G "$dir/python/torchvision_native/_C*.so" >/dev/null && echo "library + Python module" || echo "library only (no pybind11)" )
awk -v c="$t1" -v a="$t0" -v b="$t2" -v p="$preset" -v j="$jobs" -v n="$(nproc)" -v w="$python_module" \
    -v cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" 'BEGIN {
  printf "%s: clean release build, %s, -j %s on %s cores (%s): %.1f min (configure %.0f s, build %.1f min)\n",
         p, w, j, n, cpu, (b - a) / 60, c - a, (b - c) / 60 }'
