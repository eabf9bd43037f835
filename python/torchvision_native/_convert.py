"""Zero-copy conversion between torch tensors / numpy arrays and tvops tensors.

Inputs cross through DLPack; outputs come back as the type of the first input
(torch in, torch out; numpy in, numpy out), on the same device. torch is optional:
it is only touched when the caller passed torch tensors.
"""
import sys

import numpy as np

from . import _C


def _torch():
    return sys.modules.get("torch")


def is_torch(x):
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def cuda_stream_of(x):
    """The torch CUDA stream handle the op should run on (0 = legacy default).
    torch's C entry point: torch.cuda.current_stream() builds a Stream object (~5 us)."""
    return _torch()._C._cuda_getCurrentRawStream(x.device.index)


def to_native(x, name):
    """A tvops tensor viewing `x` (a torch tensor or numpy array; lists become numpy)."""
    if isinstance(x, _C.Tensor):
        return x
    if is_torch(x):
        if x.requires_grad:
            x = x.detach()
        if x.is_cuda:
            # The ops run on the current stream of x's device, the one torch orders x's
            # producers on, so the export needs no stream handshake: the bare export, on
            # any device (__dlpack__(stream=current) would only confirm that, at ~20 us a
            # tensor, and only from the current device).
            return _C.Tensor.from_dlpack(_torch()._C._to_dlpack(x))
        return _C.Tensor.from_dlpack(x.__dlpack__())
    if not isinstance(x, np.ndarray):
        if hasattr(x, "__dlpack__"):
            return _C.Tensor.from_dlpack(x.__dlpack__())
        try:
            x = np.asarray(x)
        except Exception as e:  # noqa: BLE001
            raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}") from e
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    if not x.flags.writeable:
        x = x.copy()  # DLPack (unversioned) can't mark read-only memory
    return _C.Tensor.from_dlpack(x.__dlpack__())


def from_native(t, like):
    """Returns tvops tensor `t` as the type of `like` (torch or numpy), without copying."""
    if is_torch(like):
        return _torch().utils.dlpack.from_dlpack(t.to_capsule())
    return np.from_dlpack(t)


def stream_for(x):
    return cuda_stream_of(x) if is_torch(x) and x.is_cuda else 0
