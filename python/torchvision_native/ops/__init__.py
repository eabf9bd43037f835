"""torchvision.ops on tvops kernels: same names, arguments and results."""
from .boxes import nms

__all__ = ["nms"]
