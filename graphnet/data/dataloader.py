"""DataLoader: batches of a map-style dataset, shuffled by a graphnet.Generator, optionally fetched by worker processes.

Workers (num_workers > 0) are multiprocessing processes fed through one index queue each; batches come back in
order, and an exception in a worker is raised again in the main process with the worker's traceback as its text.
Workers pickle their results themselves, so a sample that cannot be pickled (a lambda in it) is raised as a
PicklingError naming its index instead of being dropped by the queue's feeder thread (which hangs PyTorch's loader).
"""
import multiprocessing
import os
import queue
import time
from multiprocessing.reduction import ForkingPickler

from ..frontend.creation import default_rng
from ._worker import POLL_S, ExceptionWrapper, worker_loop
from .collate import default_collate, default_convert
from .dataset import has_batch
from .sampler import BatchSampler, RandomSampler, SequentialSampler

_SHUTDOWN_JOIN_S = 5.0


class _Fetcher:
    """Turns a batch of indices into a collated batch; sent to the workers, so it holds only picklable state."""

    def __init__(self, dataset, auto_collation, collate_fn):
        self.dataset, self.auto_collation, self.collate_fn = dataset, auto_collation, collate_fn
        self.fast = auto_collation and collate_fn is default_collate and has_batch(dataset)

    def __call__(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if self.fast:
            return self.dataset._batch(index)
        getitems = getattr(self.dataset, "__getitems__", None)
        return self.collate_fn(getitems(index) if getitems else [self.dataset[i] for i in index])


class _BaseIter:
    def __init__(self, loader):
        self._loader = loader
        self._fetch = _Fetcher(loader.dataset, loader._auto_collation, loader.collate_fn)
        self._base_seed = int(default_rng(loader.generator).integers(0, 2**62))
        self._sampler_iter = iter(loader._index_sampler)

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)


class _SingleProcessIter(_BaseIter):
    def __next__(self):
        return self._fetch(next(self._sampler_iter))


class _MultiProcessIter(_BaseIter):
    """Keeps `prefetch_factor * num_workers` batches in flight and hands them out in sampler order."""

    def __init__(self, loader):
        super().__init__(loader)
        ctx = loader.multiprocessing_context
        ctx = multiprocessing.get_context(ctx) if ctx is None or isinstance(ctx, str) else ctx
        n = loader.num_workers
        self._result_queue, self._done = ctx.Queue(), ctx.Event()
        self._index_queues = [ctx.Queue() for _ in range(n)]
        self._workers = [ctx.Process(target=worker_loop, daemon=True,
                                     args=(self._fetch, loader.dataset, self._index_queues[i], self._result_queue,
                                           self._done, self._base_seed + i, i, n, loader.worker_init_fn))
                         for i in range(n)]
        self._closed, self._owner_pid = False, os.getpid()
        for w in self._workers:
            w.start()
        self._epoch = 0
        self._start_epoch()

    def _start_epoch(self):
        self._send_idx = self._rcvd_idx = 0
        self._cache = {}
        for _ in range(self._loader.prefetch_factor * len(self._workers)):
            self._try_put()

    def _reset(self):
        """Start a new epoch on the same (persistent) workers; results of an abandoned epoch are dropped."""
        self._sampler_iter = iter(self._loader._index_sampler)
        self._epoch += 1
        self._start_epoch()

    def _try_put(self):
        try:
            indices = next(self._sampler_iter)
        except StopIteration:
            return
        self._index_queues[self._send_idx % len(self._workers)].put((self._epoch, self._send_idx, indices))
        self._send_idx += 1

    def __next__(self):
        while self._rcvd_idx not in self._cache:
            if self._rcvd_idx >= self._send_idx:
                if not self._loader.persistent_workers:
                    self._shutdown()
                raise StopIteration
            epoch, idx, data = self._get()
            if epoch == self._epoch:
                self._cache[idx] = data
        data = ForkingPickler.loads(self._cache.pop(self._rcvd_idx))  # workers send their results pickled
        self._rcvd_idx += 1
        self._try_put()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return data

    def _get(self):
        """The next result from any worker; raises if a worker died or the loader's timeout passed."""
        timeout = self._loader.timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        while True:
            wait = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            try:
                return self._result_queue.get(timeout=wait)
            except queue.Empty:
                dead = [w.pid for w in self._workers if not w.is_alive()]
                if dead:
                    self._shutdown()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(map(str, dead))}) exited "
                                       "unexpectedly") from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None

    def _shutdown(self):
        if self._closed:
            return
        self._closed = True
        self._done.set()
        for q, w in zip(self._index_queues, self._workers):
            if w.is_alive():
                q.put(None)
        for w in self._workers:
            w.join(timeout=_SHUTDOWN_JOIN_S)
            if w.is_alive():
                w.terminate()
        for q in (*self._index_queues, self._result_queue):
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        if getattr(self, "_owner_pid", None) == os.getpid():  # not in a forked child that inherited this object
            self._shutdown()


def _check_args(batch_size, shuffle, sampler, batch_sampler, drop_last, num_workers, timeout, prefetch_factor,
                persistent_workers):
    if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
        raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last")
    if sampler is not None and shuffle:
        raise ValueError("sampler option is mutually exclusive with shuffle")
    if batch_size is None and drop_last:
        raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
    if timeout < 0:
        raise ValueError("timeout option should be non-negative")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError("prefetch_factor option could only be specified in multiprocessing. Let num_workers > 0 to "
                         "enable multiprocessing, otherwise set prefetch_factor to None.")
    if persistent_workers and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")


class DataLoader:
    """Iterates over `dataset` in batches, as torch.utils.data.DataLoader (pin_memory is accepted; a CPU no-op)."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device=""):
        _check_args(batch_size, shuffle, sampler, batch_sampler, drop_last, num_workers, timeout, prefetch_factor,
                    persistent_workers)
        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.num_workers, self.timeout, self.worker_init_fn = num_workers, timeout, worker_init_fn
        self.prefetch_factor = 2 if prefetch_factor is None and num_workers > 0 else prefetch_factor
        self.persistent_workers, self.multiprocessing_context = persistent_workers, multiprocessing_context
        self.pin_memory, self.pin_memory_device = pin_memory, pin_memory_device
        self.collate_fn = collate_fn or (default_collate if batch_sampler is not None else default_convert)
        self._iterator = None

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if not self.persistent_workers:
            return _MultiProcessIter(self)
        if self._iterator is None:
            self._iterator = _MultiProcessIter(self)
        else:
            self._iterator._reset()
        return self._iterator

    def __len__(self):
        return len(self._index_sampler)
