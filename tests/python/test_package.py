"""The package itself: torch-free import, build and runtime information, environment knobs.

Tests that depend on process start-up (environment variables, blocked imports) run a
fresh interpreter with the same sys.path as this one.
"""
import os
import re
import subprocess
import sys
import textwrap

import pytest

import torchvision_native as tvn

VARIANT_RE = r"^(cpu|sm\d+)-(avx2|avx512|avx512bf16|avx512vnni|armv8\.2|armv9)$"
KNOWN_ISAS = {"avx2", "avx512", "avx512bf16", "avx512vnni", "armv8.2", "armv9"}


def run_python(code, env=None, check=True):
    """Runs `code` in a fresh interpreter that sees the same packages as this one."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    for key in ("TVOPS_CPU_ISA", "TVOPS_NUM_THREADS"):
        full_env.pop(key, None)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True,
                          text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


BLOCK_TORCH = """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockTorch())
"""


def test_import_without_torch():
    proc = run_python(BLOCK_TORCH + """
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("the torch blocker did not work")

    import numpy as np
    import torchvision_native as tvn

    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    keep = tvn.ops.nms(boxes, scores, 0.5)
    assert isinstance(keep, np.ndarray) and keep.dtype == np.int64, (type(keep), keep.dtype)
    assert keep.tolist() == [3, 2], keep.tolist()
    assert tvn.ops.nms(boxes.astype(np.float64), scores.astype(np.float64), 0.5).tolist() == [3, 2]
    tvn.build_info(); tvn.cpu_features(); tvn.recommended_variant(); tvn.active_cpu_isa()
    assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.split(".")[0] == "torch")
    print("ok")
    """)
    assert proc.stdout.strip().endswith("ok")


def test_build_info_keys():
    info = tvn.build_info()
    for key in ("version", "variant", "cpu_isas", "cuda_archs", "cuda_version", "compiler"):
        assert key in info, f"build_info() lacks {key!r}: {sorted(info)}"
    assert info["version"] == tvn.__version__
    assert re.match(r"^\d+\.\d+\.\d+", info["version"])
    assert isinstance(info["cpu_isas"], list) and info["cpu_isas"]
    assert set(info["cpu_isas"]) <= KNOWN_ISAS
    assert isinstance(info["cuda_archs"], list)
    assert isinstance(info["compiler"], str) and info["compiler"]


def test_recommended_variant():
    name, reason = tvn.recommended_variant()
    assert re.match(VARIANT_RE, name), name
    assert isinstance(reason, str) and reason


def test_available_and_active_isa():
    available = tvn.available_cpu_isas()
    assert available, "no ISA tier of this build runs on this CPU"
    assert set(available) <= set(tvn.build_info()["cpu_isas"])
    assert tvn.active_cpu_isa() in available


def test_cpu_features():
    features = tvn.cpu_features()
    assert isinstance(features, dict)
    assert features.get("logical_cores", 0) >= 1
    assert "model" in features and "arch" in features


def test_set_cpu_isa_round_trip(isa):
    # The isa fixture switched to `isa`; it restores the previous tier afterwards.
    assert tvn.active_cpu_isa() == isa


def test_set_cpu_isa_rejects_unknown():
    before = tvn.active_cpu_isa()
    with pytest.raises(ValueError, match="bogus"):
        tvn.set_cpu_isa("bogus")
    assert tvn.active_cpu_isa() == before


def test_env_cpu_isa_avx2():
    if "avx2" not in tvn.available_cpu_isas():
        pytest.skip("this build or CPU has no avx2 tier")
    proc = run_python("""
        import torchvision_native as tvn
        print(tvn.active_cpu_isa())
    """, env={"TVOPS_CPU_ISA": "avx2"})
    assert proc.stdout.strip() == "avx2"


def test_env_cpu_isa_each_tier():
    code = "import torchvision_native as tvn; print(tvn.active_cpu_isa())"
    for name in tvn.available_cpu_isas():
        assert run_python(code, env={"TVOPS_CPU_ISA": name}).stdout.strip() == name


def test_env_cpu_isa_bogus_raises_on_first_op():
    proc = run_python("""
        import numpy as np
        import torchvision_native as tvn
        boxes, scores = np.zeros((3, 4), np.float32), np.zeros(3, np.float32)
        for attempt in range(2):  # the error is not a one-off
            try:
                tvn.ops.nms(boxes, scores, 0.5)
            except tvn.TvopsError as e:
                print("error:", e)
            else:
                raise AssertionError("nms ran with TVOPS_CPU_ISA=bogus")
    """, env={"TVOPS_CPU_ISA": "bogus"})
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "TVOPS_CPU_ISA=bogus" in line
        # The message names the tiers that would work.
        for name in tvn.available_cpu_isas():
            assert name in line


def test_env_num_threads():
    proc = run_python("import torchvision_native as tvn; print(tvn.num_threads())", env={"TVOPS_NUM_THREADS": "1"})
    assert proc.stdout.strip() == "1"


def test_default_num_threads():
    proc = run_python("import torchvision_native as tvn; print(tvn.num_threads())")
    assert int(proc.stdout.strip()) == tvn.cpu_features()["logical_cores"]


def test_error_hierarchy():
    assert issubclass(tvn.TvopsError, RuntimeError)
    assert issubclass(tvn.TvopsValueError, tvn.TvopsError) and issubclass(tvn.TvopsValueError, ValueError)
    assert issubclass(tvn.TvopsTypeError, tvn.TvopsError) and issubclass(tvn.TvopsTypeError, TypeError)


def test_public_names():
    for name in tvn.__all__:
        assert hasattr(tvn, name), name
    assert callable(tvn.ops.nms)
