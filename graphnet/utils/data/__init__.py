"""`graphnet.utils.data`: the same names as graphnet.data, where PyTorch code looks for them (torch.utils.data),
plus DistributedSampler (torch.utils.data.distributed)."""
from ... import data as _data
from . import dataloader, dataset, distributed, sampler  # noqa: F401 - PyTorch's submodule paths
from .distributed import DistributedSampler

__all__ = [name for name in _data.__all__ if name not in ("datasets", "transforms")] + ["DistributedSampler"]
globals().update({name: getattr(_data, name) for name in __all__ if name != "DistributedSampler"})
