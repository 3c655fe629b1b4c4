"""graphnet.cuda: GPU availability and device queries (the CUDA backend lives in graphnet/codegen and runtime)."""
from ..runtime.cuda_runtime import device_count, is_available
from ..runtime.storage import cuda_unavailable_error


def current_device():
    if not is_available():
        raise cuda_unavailable_error("current_device()")
    return 0


def synchronize(device=None):
    if is_available():
        from numba import cuda

        cuda.synchronize()


__all__ = ["current_device", "device_count", "is_available", "synchronize"]
