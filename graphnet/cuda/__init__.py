"""graphnet.cuda: GPU availability, device queries and memory statistics (PyTorch's torch.cuda names).

Importing it registers the eager CUDA backend (runtime/cuda_backend.py); numba.cuda itself is imported only when a
GPU is first asked about or used.
"""
from ..runtime import cuda_backend  # noqa: F401  (registers dispatch.BACKENDS['cuda'])
from ..runtime.cuda_runtime import device_count, is_available
from ..runtime.storage import OutOfMemoryError, allocator, cuda_unavailable_error
from . import amp  # noqa: E402  (torch.cuda.amp.GradScaler)


def _require(what):
    if not is_available():
        raise cuda_unavailable_error(what)


def current_device():
    _require("current_device()")
    return 0


def get_device_name(device=None):
    from ..runtime.cuda_runtime import device_name

    _require("get_device_name()")
    return device_name(_index(device))


def synchronize(device=None):
    if is_available():
        from ..runtime.cuda_runtime import synchronize as sync

        sync()


def _index(device):
    if device is None:
        return 0
    if isinstance(device, int):
        return device
    from ..core.device import as_device

    return as_device(device).index or 0


def memory_allocated(device=None):
    """Bytes held by live tensors on `device` (rounded to the allocator's block sizes)."""
    return allocator(_index(device)).allocated


def max_memory_allocated(device=None):
    return allocator(_index(device)).peak


def memory_reserved(device=None):
    """Bytes the caching allocator holds: in use plus cached free blocks."""
    return allocator(_index(device)).reserved


def reset_peak_memory_stats(device=None):
    alloc = allocator(_index(device))
    alloc.peak = alloc.allocated


def empty_cache():
    """Give cached free blocks back to the GPU (live tensors keep theirs)."""
    from ..runtime.storage import _ALLOCATORS

    for alloc in _ALLOCATORS.values():
        alloc.empty_cache()


def manual_seed(seed):
    """Seed the GPU's random numbers; silently ignored without a GPU, as in PyTorch. graphnet draws every device's
    random numbers from its one default generator, so with a GPU this seeds that generator."""
    if is_available():
        from ..frontend.creation import manual_seed as seed_all

        seed_all(seed)


manual_seed_all = manual_seed


def seed():
    """Reseed the GPU's random numbers from a random seed; ignored without a GPU, like manual_seed."""
    if is_available():
        from ..frontend.creation import default_generator

        default_generator.seed()


seed_all = seed


def initial_seed():
    from ..frontend.creation import default_generator

    return default_generator.initial_seed()


def set_device(device):
    """Select the current GPU: graphnet uses device 0 (another index is refused while only one is supported)."""
    index = _index(device)
    if index != 0:
        _require(f"set_device({index})")
        if index >= device_count():
            raise RuntimeError(f"CUDA error: invalid device ordinal (device {index} of {device_count()})")


def is_initialized():
    return is_available()


def get_device_capability(device=None):
    from numba import cuda

    _require("get_device_capability()")
    return tuple(cuda.get_current_device().compute_capability)


def fallback_counts():
    """{op name: calls} of ops that ran on the host because they have no CUDA kernel yet."""
    return dict(cuda_backend.FALLBACKS)


__all__ = ["OutOfMemoryError", "amp", "current_device", "device_count", "empty_cache", "fallback_counts",
           "get_device_capability", "get_device_name", "initial_seed", "is_available", "is_initialized",
           "manual_seed", "manual_seed_all", "max_memory_allocated", "memory_allocated", "memory_reserved",
           "reset_peak_memory_stats", "seed", "seed_all", "set_device", "synchronize"]
