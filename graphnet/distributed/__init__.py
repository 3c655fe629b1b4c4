"""graphnet.distributed: torch.distributed's process group and collectives, run by MPI through mpi4py.

Launch ranks with `python -m graphnet.distributed.run --nproc-per-node N script.py` (or mpiexec); mpi4py is
imported only when a group starts, so importing this package never needs it.
"""
from .c10d import (ReduceOp, Work, all_gather, all_gather_into_tensor, all_gather_object, all_reduce, barrier,
                   broadcast, broadcast_object_list, destroy_process_group, gather, get_backend, get_rank,
                   get_world_size, init_process_group, irecv, is_available, is_initialized, is_mpi_available, isend,
                   recv, reduce_scatter_tensor, scatter, send)

__all__ = ["ReduceOp", "Work", "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce", "barrier",
           "broadcast", "broadcast_object_list", "destroy_process_group", "gather", "get_backend", "get_rank",
           "get_world_size", "init_process_group", "irecv", "is_available", "is_initialized", "is_mpi_available",
           "isend", "recv", "reduce_scatter_tensor", "scatter", "send"]
