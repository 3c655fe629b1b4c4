"""CPU storages in anonymous shared mappings (memfd): what `Tensor.share_memory_()` does, and how another process
maps the same memory from a duplicated descriptor (graphnet.multiprocessing pickles shared tensors so)."""
import mmap
import os

import numpy as np


def share(arr):
    """(a copy of `arr` in a fresh shared mapping, its file descriptor)."""
    nbytes = max(arr.nbytes, 1)
    fd = os.memfd_create(f"graphnet-tensor-{os.getpid()}", os.MFD_CLOEXEC)
    os.ftruncate(fd, nbytes)
    out = mapped(fd, arr.dtype, arr.shape)
    np.copyto(out, arr)
    return out, fd


def mapped(fd, dtype, shape):
    """The array of `shape` and `dtype` in the shared mapping behind `fd` (read-write, shared with its owner)."""
    buf = mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    return np.frombuffer(buf, dtype, count=int(np.prod(shape, dtype=np.int64))).reshape(shape)
