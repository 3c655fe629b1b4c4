"""torch.multiprocessing: Python's multiprocessing, plus tensors that cross processes by shared memory.

`t.share_memory_()` moves a CPU tensor's storage into an anonymous shared mapping (memfd); a shared tensor sent to
another process (Process args, Queue, any start method) is passed as a duplicated file descriptor and mapped there,
so both processes read and write the same memory (Hogwild training: `model.share_memory()`, then processes that
step one model). Unshared tensors are pickled by value, as by graphnet.save.
"""
import multiprocessing
from multiprocessing import *  # noqa: F401,F403 - the whole standard API, as torch.multiprocessing offers it

from .reductions import init_reductions
from .spawn import ProcessContext, ProcessExitedException, ProcessRaisedException, spawn, start_processes

__all__ = [*multiprocessing.__all__, "spawn", "start_processes", "ProcessContext", "ProcessRaisedException",
           "ProcessExitedException", "get_sharing_strategy", "set_sharing_strategy", "get_all_sharing_strategies"]

_STRATEGIES = {"file_descriptor"}


def get_all_sharing_strategies():
    return set(_STRATEGIES)


def get_sharing_strategy():
    return "file_descriptor"


def set_sharing_strategy(new_strategy):
    if new_strategy not in _STRATEGIES:
        raise ValueError(f"set_sharing_strategy: graphnet shares tensors by file descriptor only, not "
                         f"{new_strategy!r}")


init_reductions()
