"""The process group's collectives as the collective ops see them: graphnet.distributed (a higher layer) registers
them at init_process_group, so a graph node can reach the ranks without the IR importing MPI. Host functions run a
collective from Python; the native entry, where the MPI library's symbols were found, lets a generated driver call
MPI_Allreduce / MPI_Bcast itself, so a compiled DDP step stays one call."""
from dataclasses import dataclass

import numpy as np

_HOST = {}
_NATIVE = [None]
LIVE = np.zeros(1, np.int64)  # 1 while the default group is up: a driver checks it before each native collective
NOT_INITIALIZED = "Default process group has not been initialized, please make sure to call init_process_group."


@dataclass(frozen=True)
class Native:
    """What a driver passes to the MPI library: the functions' addresses, and the handles (Open MPI: pointers,
    MPICH: ints, each as `handle_type`) of the default communicator, MPI_SUM, the datatypes by NumPy dtype name,
    and MPI_IN_PLACE's value."""
    allreduce: int
    bcast: int
    comm: int
    sum: int
    datatypes: dict
    in_place: int
    handle_type: type
    world: int


def register(name, fn):
    """fn(array, **attrs) runs collective `name` in place on a C-contiguous array over the default group
    ('all_reduce': reduce_op SUM or AVG; 'broadcast': src); fn None unregisters it (destroy_process_group)."""
    if fn is None:
        _HOST.pop(name, None)
    else:
        _HOST[name] = fn


def register_native(native):
    """The group's Native entry (None: there is none, or the group is gone: drivers built on it then raise)."""
    _NATIVE[0] = native
    LIVE[0] = native is not None


def native():
    return _NATIVE[0]


def run(name, array, **attrs):
    fn = _HOST.get(name)
    if fn is None:
        raise ValueError(NOT_INITIALIZED)
    fn(array, **attrs)
