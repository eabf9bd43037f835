#!/usr/bin/env bash
# Builds and tests on the GPU machine (Ubuntu, CUDA, torch + torchvision CUDA
# installed; no xsimd/dlpack headers, no pybind11, no registry access).
# Needs, carried from the dev machine:
#   .devdeps/  the .deb files from ../shared/tools/device-deps.sh .devdeps
#   .whl/      pybind11's wheel (pip download --no-deps ... pybind11)
# Usage there: bash .ci/gpu-machine.sh [pytest args...]; logs go to $OUT (or build/gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/gpu-logs}
mkdir -p "$out" .devdeps/root
for f in .devdeps/*.deb; do dpkg -x "$f" .devdeps/root; done
python3 -m pip install -q --no-index --no-deps --target /tmp/tvops-site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/tvops-site
nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader | tee "$out/gpu.txt"

cmake --preset dev -DCMAKE_PREFIX_PATH="$PWD/.devdeps/root/usr" -DTVOPS_USE_CCACHE=OFF \
      -DPython3_EXECUTABLE="$(command -v python3)" -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" \
      > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
cmake --build build/dev -j 16 > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
ctest --test-dir build/dev -j 8 --output-on-failure > "$out/ctest.log" 2>&1; tail -3 "$out/ctest.log"
PYTHONPATH=build/dev/python:/tmp/tvops-site python3 -m pytest -q -rs tests/python "$@" > "$out/pytest.log" 2>&1
tail -15 "$out/pytest.log"
