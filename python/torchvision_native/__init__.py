"""torchvision_native: torchvision's core operators on native kernels (tvops).

    import torchvision_native as tvn
    keep = tvn.ops.nms(boxes, scores, 0.5)   # torch tensors or numpy arrays
    print(tvn.build_info())
"""
try:
    from . import _C
except ImportError as e:  # pragma: no cover - a broken install
    raise ImportError(f"torchvision_native: its native module failed to load: {e}") from e

# Before any kernel runs: can this CPU run this build? If not, say which variant it needs.
try:
    _C.check_cpu_compatibility()
except RuntimeError as e:
    raise ImportError(str(e)) from None

from ._C import TvopsError, TvopsTypeError, TvopsValueError  # noqa: E402
from . import io, ops  # noqa: E402
from . import _torch  # noqa: E402
from ._runtime import (  # noqa: E402
    active_cpu_isa,
    available_cpu_isas,
    build_info,
    cpu_features,
    num_threads,
    recommended_variant,
    set_cpu_isa,
    set_num_threads,
)

__version__ = _C.build_info()["version"]

# torch.ops.tvops.* where torch is installed (ops imported it above).
_torch.register_if_torch()

_PATCH_NAMES = ("patch_torchvision", "unpatch_torchvision", "patched_torchvision", "is_torchvision_patched")


def __getattr__(name):
    # torchvision_native.patch_torchvision() and friends need torch: imported on first use.
    if name in _PATCH_NAMES:
        from . import patch

        return getattr(patch, name)
    raise AttributeError(f"module 'torchvision_native' has no attribute {name!r}")


__all__ = [
    "patch_torchvision", "unpatch_torchvision", "patched_torchvision", "is_torchvision_patched",
    "io", "ops", "build_info", "cpu_features", "recommended_variant", "active_cpu_isa", "available_cpu_isas",
    "set_cpu_isa", "num_threads", "set_num_threads", "TvopsError", "TvopsValueError", "TvopsTypeError",
]
