"""The DataLoader worker process: fetch batches for the indices it is sent, report errors with their traceback."""
import io
import os
import pickle
import queue
import random
import sys
import traceback
from multiprocessing.reduction import ForkingPickler

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


def _pickles(obj):
    """Whether `obj` can be pickled (a class: whether the main process could import it by name)."""
    try:
        pickle.dumps(obj)
    except Exception:
        return False
    return True


class ExceptionWrapper:
    """An exception caught in a worker (or `exc`), carried to the main process as its type and traceback text.

    A type the main process could not unpickle (a class defined inside a function) travels as RuntimeError.
    """

    def __init__(self, where, exc=None):
        exc = exc or sys.exc_info()[1]
        self.exc_type = type(exc) if _pickles(type(exc)) else RuntimeError
        self.msg = f"Caught {type(exc).__name__} {where}.\nOriginal " + "".join(traceback.format_exception(exc))

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
        result = init_error or _fetch_or_wrap(fetch, indices, worker_id)
        result_queue.put((epoch, batch_idx, _pickled(result, indices, worker_id)))
    result_queue.cancel_join_thread()  # exit now even if the parent never reads what is left


def _fetch_or_wrap(fetch, indices, worker_id):
    try:
        return fetch(indices)
    except Exception:
        return ExceptionWrapper(f"in DataLoader worker process {worker_id}")


def _dumps(obj):
    """`obj` pickled as a multiprocessing queue would, as bytes (which the queue then sends as they are)."""
    buf = io.BytesIO()
    ForkingPickler(buf).dump(obj)
    return buf.getvalue()


def _samples(indices):
    """How an error names the samples of a task: one index (batch_size=None or 1) or the batch's list."""
    if not isinstance(indices, (list, tuple)):
        return f"the sample at index {indices!r}"
    return f"the sample at index {indices[0]!r}" if len(indices) == 1 else f"the samples at indices {list(indices)}"


def _pickled(result, indices, worker_id):
    """`result` pickled here, so that one which cannot be pickled becomes an error for the main process to raise.

    (The queue's feeder thread would only print the error and drop the batch: the main process would wait forever.)
    """
    try:
        return _dumps(result)
    except Exception as e:
        err = pickle.PicklingError(
            f"DataLoader worker {worker_id}: {_samples(indices)} cannot be sent to the main process: "
            f"{type(e).__name__}: {e}. Return tensors, arrays, numbers, strings and containers of them from the "
            "dataset and collate_fn (lambdas, open files, locks and generators cannot be pickled), or use "
            "num_workers=0.")
        err.__cause__ = e
        return _dumps(ExceptionWrapper(f"in DataLoader worker process {worker_id}", err))
