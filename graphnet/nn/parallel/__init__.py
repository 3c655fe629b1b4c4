"""graphnet.nn.parallel: DataParallel and data_parallel, which run the module on one device (graphnet has one GPU)."""
from .data_parallel import DataParallel, data_parallel

__all__ = ["DataParallel", "data_parallel"]
