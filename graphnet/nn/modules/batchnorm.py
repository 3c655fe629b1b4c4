"""PyTorch's `torch.nn.modules.batchnorm` path (`isinstance(m, nn.modules.batchnorm._BatchNorm)` is common)."""
from .lazy import LazyBatchNorm1d, LazyBatchNorm2d
from .normalization import BatchNorm1d, BatchNorm2d, _BatchNorm, _NormBase

__all__ = ["_NormBase", "_BatchNorm", "BatchNorm1d", "BatchNorm2d", "LazyBatchNorm1d", "LazyBatchNorm2d"]
