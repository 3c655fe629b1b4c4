"""What graphnet.cuda answers: availability and device counts, asked of numba.cuda only when needed."""
import functools
import os


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


def device_count():
    cuda = _numba_cuda() if is_available() else None
    return len(cuda.gpus) if cuda is not None else 0


def to_device(arr, device):
    cuda = _numba_cuda()
    with cuda.gpus[device.index]:
        return cuda.to_device(arr)
