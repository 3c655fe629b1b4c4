"""graphnet.nn.parallel: torch.nn.parallel's wrappers (DistributedDataParallel runs on graphnet.distributed)."""
from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
