# Entry points. The README's two commands are `make bench` and `make test`; each
# installs what is missing, builds what it needs and runs on a fresh machine.
PRESET ?= dev
BUILD  := build/$(PRESET)
PY     := .venv/bin/python
JOBS   ?= $(shell nproc)
# ccache hits across build folders of different presets
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: deps configure build bench bench-cpp test test-cpp test-python presets presets-check \
        variants-ci packaging-ci wheel select asan clean

deps:
	@packaging/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake --preset $(PRESET) -DPython3_EXECUTABLE=$(abspath $(PY)) \
	      -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir)

configure: $(BUILD)/build.ninja

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

# The main job: the benchmark table of tvops against torchvision on this machine.
bench: build
	PYTHONPATH=$(BUILD)/python $(PY) benchmarks/python/compare.py $(BENCH_ARGS)

bench-cpp: build
	$(BUILD)/benchmarks/bench_nms

# The whole test suite: C++ (ctest) and Python (pytest: the package, and the variant
# recommender and packaging files in tests/packaging).
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	PYTHONPATH=$(BUILD)/python $(PY) -m pytest -q tests/python tests/packaging

test-cpp: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-python: build
	PYTHONPATH=$(BUILD)/python $(PY) -m pytest -q tests/python tests/packaging

# Regenerate what cmake/variants.json drives (CMakePresets.json; the recommender tables,
# nix/flox recipes and README tables) / check that it is fresh.
presets:
	python3 cmake/gen_presets.py
	python3 packaging/gen_packaging.py
presets-check:
	python3 cmake/gen_presets.py --check
	python3 packaging/gen_packaging.py --check

# The wheel of one variant, e.g. `make wheel VARIANT=sm120-avx512` (-> dist/).
VARIANT ?= cpu-avx2
wheel: deps
	$(PY) packaging/build_wheel.py $(VARIANT) --jobs $(JOBS)

# Which variant this machine should install, and why.
select:
	@packaging/select-variant.sh

# What CI checks beyond `make test`: every preset configures (CUDA+ARM ones fail with
# their sentence), one CUDA variant builds for exactly its SM, one ARM variant
# cross-builds and passes its tests under qemu, and the C++ tests pass under ASan.
variants-ci: deps
	python3 cmake/verify_presets.py --configure-all --build sm120-avx512,cpu-armv9,asan --test cpu-armv9,asan --compile-cuda sm80-avx2

# The variant packages: a cpu-avx2 wheel built, auditwheel-checked, installed in a fresh
# venv and parity-tested; its tar.gz and .deb consumed by tests/consumer; recipes parse.
packaging-ci: deps
	JOBS=$(JOBS) packaging/ci.sh

asan: deps
	python3 cmake/verify_presets.py --build asan --test asan

clean:
	rm -rf build
