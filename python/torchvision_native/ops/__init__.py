"""torchvision.ops on tvops kernels: same names, arguments and results."""
from .boxes import batched_nms, nms

__all__ = ["batched_nms", "nms"]
