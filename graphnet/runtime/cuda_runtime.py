"""What graphnet.cuda answers: availability and device counts, asked of numba.cuda only when needed."""
import functools
import os

import numpy as np


@functools.lru_cache(maxsize=1)
def _numba_cuda():
    """numba.cuda if a GPU (or the simulator, NUMBA_ENABLE_CUDASIM=1) can be used, else None."""
    try:
        from numba import cuda
    except ImportError:
        return None
    try:
        return cuda if cuda.is_available() else None
    except Exception:  # a broken driver install reads as 'no GPU'
        return None


def is_available():
    if os.environ.get("GRAPHNET_DISABLE_CUDA") == "1":
        return False
    return _numba_cuda() is not None


def is_simulator():
    """True when numba.cuda is Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1 before numba was imported)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def device_count():
    cuda = _numba_cuda() if is_available() else None
    return len(cuda.gpus) if cuda is not None else 0


def raw_alloc(nbytes, index=0):
    """A fresh 1-D uint8 device array of `nbytes` on GPU `index` (the caching allocator's backing store)."""
    cuda = _numba_cuda()
    if index == 0:
        return cuda.device_array(nbytes, np.uint8)
    with cuda.gpus[index]:
        return cuda.device_array(nbytes, np.uint8)


def synchronize():
    cuda = _numba_cuda()
    if cuda is not None:
        cuda.synchronize()


def device_name(index=0):
    cuda = _numba_cuda()
    if is_simulator():
        return "Numba CUDA simulator"
    with cuda.gpus[index]:
        name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)
