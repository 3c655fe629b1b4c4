"""The process group's host collectives as the collective ops see them: graphnet.distributed (a higher layer)
registers them at init_process_group, so a graph node can reach the ranks without the IR importing MPI."""
_HOST = {}


def register(name, fn):
    """fn(array, **attrs) runs collective `name` in place on a C-contiguous array over the default group
    ('all_reduce': reduce_op SUM or AVG; 'broadcast': src); fn None unregisters it (destroy_process_group)."""
    if fn is None:
        _HOST.pop(name, None)
    else:
        _HOST[name] = fn


def run(name, array, **attrs):
    fn = _HOST.get(name)
    if fn is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    fn(array, **attrs)
