"""The DataLoader worker process: fetch batches for the indices it is sent, report errors with their traceback."""
import os
import queue
import random
import sys
import traceback

import numpy as np

POLL_S = 0.2  # how often a waiting worker (or the main process) checks that the other side is still alive


class WorkerInfo:
    """What `get_worker_info()` returns inside a worker: id, num_workers, seed and its copy of the dataset."""

    def __init__(self, id, num_workers, seed, dataset):  # noqa: A002 - PyTorch's field name
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


_worker_info = None


def get_worker_info():
    """Information about the current DataLoader worker process, or None in the main process."""
    return _worker_info


class _KeyErrorMessage(str):
    """KeyError prints the repr of its message; this keeps the traceback text readable."""

    def __repr__(self):
        return self


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process as its type and traceback text."""

    def __init__(self, where):
        exc_type, exc, _ = sys.exc_info()
        self.exc_type = exc_type
        self.msg = f"Caught {exc_type.__name__} {where}.\nOriginal " + "".join(traceback.format_exception(exc))

    def reraise(self):
        """Raise the worker's exception type with the worker's traceback text as the message."""
        msg = _KeyErrorMessage(self.msg) if self.exc_type is KeyError else self.msg
        try:
            err = self.exc_type(msg)
        except Exception:
            err = RuntimeError(self.msg)
        raise err


def _seed_worker(seed):
    from ..frontend.creation import manual_seed

    manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def worker_loop(fetch, dataset, index_queue, result_queue, done, seed, worker_id, num_workers, init_fn):
    """Serve `(epoch, batch_idx, indices)` tasks until a None task arrives or the parent process dies.

    Setting the `done` event also ends it (without the sentinel, which a garbage-collected queue may never send).
    """
    global _worker_info
    parent = os.getppid()
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    _seed_worker(seed)
    init_error = None
    if init_fn is not None:
        try:
            init_fn(worker_id)
        except Exception:
            init_error = ExceptionWrapper(f"in worker_init_fn of DataLoader worker process {worker_id}")
    while not done.is_set():
        try:
            task = index_queue.get(timeout=POLL_S)
        except queue.Empty:
            if os.getppid() != parent:
                break
            continue
        if task is None:
            break
        epoch, batch_idx, indices = task
        result_queue.put((epoch, batch_idx, init_error or _fetch_or_wrap(fetch, indices, worker_id)))
    result_queue.cancel_join_thread()  # exit now even if the parent never reads what is left


def _fetch_or_wrap(fetch, indices, worker_id):
    try:
        return fetch(indices)
    except Exception:
        return ExceptionWrapper(f"in DataLoader worker process {worker_id}")
