#!/usr/bin/env bash
# CI for the variant packages (make packaging-ci), on one CPU variant, cpu-avx2:
#   1. its wheel: built (packaging/build_wheel.py), auditwheel-checked, installed into a
#      fresh venv that imports it, reports the variant and runs nms; then torchvision's nms
#      parity test (tests/python/test_nms.py) against the installed wheel, and the clear
#      error when the CPU lacks the variant's ISA;
#   2. its C++ packages: cpack makes the tar.gz and the .deb, tests/consumer builds and runs
#      against each, unpacked;
#   3. the generated files are fresh and every nix/flox recipe parses (nix-instantiate).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD"
PRESET=${PRESET:-cpu-avx2}
JOBS=${JOBS:-$(nproc)}
PY=$PWD/.venv/bin/python
start=$(date +%s)
step() { echo; echo "--- $* ($(( $(date +%s) - start ))s)"; }

step "wheel: build $PRESET"
rm -rf build/ci-dist
"$PY" packaging/build_wheel.py "$PRESET" --jobs "$JOBS" --dist build/ci-dist
wheel=$(ls build/ci-dist/*.whl)
"$PY" -m auditwheel show "$wheel" | tee build/ci-dist/auditwheel.txt
grep -q 'is consistent with the following platform tag:' build/ci-dist/auditwheel.txt
case $wheel in *manylinux_*) ;; *) echo "not a manylinux wheel: $wheel"; exit 1 ;; esac

step "wheel: install into a fresh venv, import, build_info, nms"
rm -rf build/ci-venv
python3 -m venv build/ci-venv
build/ci-venv/bin/python -m pip install -q "$wheel"
(cd /tmp && "$OLDPWD/build/ci-venv/bin/python" - "$PRESET" <<'PY'
import sys, numpy as np
import importlib.metadata as md
import torchvision_native as tvn
import torchvision_native.select
variant = sys.argv[1]
assert "/build/ci-venv/" in tvn.__file__, tvn.__file__
assert tvn.build_info()["variant"] == variant, tvn.build_info()
dist = md.distribution(tvn.select.wheel_name(variant))
assert f"tvops-variant={variant}" in dist.metadata["Keywords"], dist.metadata["Keywords"]
assert f'"variant": "{variant}"' in dist.read_text("tvops_variant.json")
boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
keep = tvn.ops.nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.5)
assert keep.tolist() == [0, 2], keep
print(f"{dist.metadata['Name']} {dist.version}: variant {variant}, nms ok, from {tvn.__file__}")
PY
)

step "wheel: a CPU without the variant's ISA gets the ImportError, not a crash"
set +e
msg=$(cd /tmp && TVOPS_HIDE_CPU_FEATURES="avx2 asimddp" "$OLDPWD/build/ci-venv/bin/python" -c "import torchvision_native" 2>&1)
rc=$?
set -e
echo "$msg" | tail -1
[ $rc -eq 1 ] && echo "$msg" | grep -q "ImportError: tvops: this CPU .* cannot run this build: variant $PRESET"

step "wheel: torchvision's nms parity test against the installed wheel"
rm -rf build/ci-site
"$PY" -m pip install -q --no-deps --target build/ci-site "$wheel"
PYTHONPATH=build/ci-site "$PY" -c "import torchvision_native as t; assert '/build/ci-site/' in t.__file__, t.__file__"
PYTHONPATH=build/ci-site:tests/python "$PY" -m pytest -q -p no:cacheprovider tests/python/test_nms.py

step "C++ packages: $PRESET tar.gz and .deb, consumed unpacked"
cmake --preset "$PRESET" -DTVOPS_BUILD_TESTS=OFF -DTVOPS_BUILD_PYTHON=OFF > /dev/null
cmake --build --preset "$PRESET" -j "$JOBS"
rm -rf "build/$PRESET/packages"
cpack --preset "$PRESET"
for pkg in "build/$PRESET/packages"/*.tar.gz "build/$PRESET/packages"/*.deb; do
  case $pkg in *.deb) dpkg-deb --field "$pkg" Package Version Architecture Provides Conflicts Depends ;; esac
  cmake -DTVOPS_PACKAGE="$PWD/$pkg" -DTVOPS_SOURCE_DIR="$PWD" -DCMAKE_GENERATOR=Ninja \
        -P tests/consumer/run_consumer.cmake
done
ls "build/$PRESET/packages"/*.tar.gz "build/$PRESET/packages"/*.deb

step "generated files fresh; every nix/flox recipe parses"
python3 cmake/gen_presets.py --check
python3 packaging/gen_packaging.py --check
recipes=$(python3 packaging/gen_packaging.py --list-recipes; echo packaging/nix/tvops.nix)
nix-instantiate --option build-users-group "" --parse $recipes > /dev/null
echo "$(echo "$recipes" | wc -l) nix files parse"

step "packaging CI passed"
