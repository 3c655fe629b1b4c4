"""graphnet.nn.parallel: torch.nn.parallel's wrappers. DataParallel and data_parallel run the module on one device
(graphnet has one GPU); DistributedDataParallel runs on graphnet.distributed."""
from .data_parallel import DataParallel, data_parallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]
