"""The process group's host all-reduce as the `all_reduce` op sees it: graphnet.distributed (a higher layer)
registers it at init_process_group, so a graph node can reduce over the ranks without the IR importing MPI."""
_STATE = {"all_reduce": None}


def register_all_reduce(fn):
    """fn(array, op) reduces the C-contiguous array in place over the default group (op 'SUM' or 'AVG'); None
    unregisters it (destroy_process_group)."""
    _STATE["all_reduce"] = fn


def all_reduce(array, op):
    fn = _STATE["all_reduce"]
    if fn is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    fn(array, op)
