"""Buffers: NumPy arrays on the host, numba device arrays on a GPU (behind a caching allocator), and copies between.

Every device array graphnet makes is a typed view of a raw byte block owned by a `DeviceStorage`; the view carries
the storage as `_gn_storage`, so the block goes back to the allocator's free list when the last array using it dies.
"""
import os
import weakref

import numpy as np

_SMALL = 1 << 20  # blocks up to 1 MiB round to 512 bytes, larger ones to 2 MiB, as PyTorch's allocator does


def cuda_unavailable_error(what="CUDA"):
    return RuntimeError(f"{what}: no CUDA GPU is available here (graphnet.cuda.is_available() is False). Keep the "
                        "tensors on the CPU, or run on a machine with an NVIDIA GPU and numba-cuda installed.")


class OutOfMemoryError(RuntimeError):
    """A device allocation failed (or would pass GRAPHNET_CUDA_MEMORY_LIMIT); PyTorch's torch.cuda.OutOfMemoryError."""


def _fmt_bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.2f} {unit}"
        n /= 1024


def round_size(nbytes):
    """The size class of a request: a multiple of 512 bytes (small) or of 2 MiB (large); never 0."""
    step = 512 if nbytes <= _SMALL else 2 * _SMALL
    return max(step, -(-nbytes // step) * step)


class DeviceStorage:
    """Owns one raw block while any array viewing it lives; returns it to the allocator when collected."""

    __slots__ = ("raw", "size", "__weakref__")

    def __init__(self, allocator, raw, size):
        self.raw, self.size = raw, size
        weakref.finalize(self, allocator.release, raw, size)


class CachingAllocator:
    """Per-device free lists keyed by size class; counts bytes in use (allocated), held (reserved) and the peak."""

    def __init__(self, index):
        self.index = index
        self.free = {}
        self.allocated = self.reserved = self.peak = 0

    def malloc(self, nbytes):
        size = round_size(nbytes)
        blocks = self.free.get(size)
        raw = blocks.pop() if blocks else self._fresh(nbytes, size)
        self.allocated += size
        self.peak = max(self.peak, self.allocated)
        return DeviceStorage(self, raw, size)

    def _fresh(self, nbytes, size):
        limit = int(os.environ.get("GRAPHNET_CUDA_MEMORY_LIMIT", "0") or 0)
        if limit and self.reserved + size > limit:
            self.empty_cache()
            if self.allocated + size > limit:
                raise self._oom(nbytes, f"the memory limit GRAPHNET_CUDA_MEMORY_LIMIT={limit} bytes")
        from . import cuda_runtime

        try:
            raw = cuda_runtime.raw_alloc(size, self.index)
        except Exception as e:  # numba's CudaAPIError (CUDA_ERROR_OUT_OF_MEMORY): free the cache and retry once
            if "OUT_OF_MEMORY" not in str(e).upper().replace(" ", "_"):
                raise
            self.empty_cache()
            try:
                raw = cuda_runtime.raw_alloc(size, self.index)
            except Exception:
                raise self._oom(nbytes, "the GPU's capacity") from e
        self.reserved += size
        return raw

    def _oom(self, nbytes, bound):
        return OutOfMemoryError(
            f"CUDA out of memory. Tried to allocate {_fmt_bytes(nbytes)} on cuda:{self.index}, over {bound}; "
            f"graphnet holds {_fmt_bytes(self.allocated)} allocated by tensors and {_fmt_bytes(self.reserved)} "
            f"reserved in total. Free tensors you no longer need (del them), lower the batch size, or call "
            f"graphnet.cuda.empty_cache().")

    def release(self, raw, size):
        self.allocated -= size
        self.free.setdefault(size, []).append(raw)

    def empty_cache(self):
        for size, blocks in self.free.items():
            self.reserved -= size * len(blocks)
        self.free.clear()


_ALLOCATORS = {}


def allocator(index=0):
    alloc = _ALLOCATORS.get(index)
    if alloc is None:
        alloc = _ALLOCATORS[index] = CachingAllocator(index)
    return alloc


def empty(shape, dtype, index=0):
    """An uninitialised C-contiguous device array of `shape` and NumPy `dtype` from the caching allocator."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    store = allocator(index).malloc(nbytes)
    arr = store.raw[:max(nbytes, dtype.itemsize)].view(dtype)[:int(np.prod(shape, dtype=np.int64))].reshape(shape)
    arr._gn_storage = store
    return arr


def alias(arr, base):
    """Mark `arr` (a view made from `base`) as keeping `base`'s storage alive."""
    store = getattr(base, "_gn_storage", None)
    if store is not None:
        arr._gn_storage = store
    return arr


def may_share_memory(a, b):
    """Whether two device arrays' byte ranges overlap (a view and its base do), as np.may_share_memory."""
    ranges = []
    for arr in (a, b):
        start = cuda_array_interface(arr)["data"][0]
        ranges.append((start, start + arr.size * np.dtype(arr.dtype).itemsize))
    (a0, a1), (b0, b1) = ranges
    return a0 < b1 and b0 < a1


def flat(arr):
    """A 1-D view of a C-contiguous device array (kernels index flat buffers)."""
    return arr.reshape(arr.size) if arr.ndim != 1 else arr


def to_device(host, index=0):
    host = np.asarray(host)
    host = host if host.flags.c_contiguous else host.copy()
    out = empty(host.shape, host.dtype, index)
    if host.size:
        out.copy_to_device(host)
    return out


def to_host(arr):
    if arr.size == 0:
        return np.empty(arr.shape, arr.dtype)
    return arr.copy_to_host()


def transfer(buf, device):
    """Copy a buffer to `device`: host<->GPU through numba.cuda (GPU<->GPU through the host)."""
    from . import cuda_runtime

    if device.type == "cpu":
        return to_host(buf) if not isinstance(buf, np.ndarray) else buf.copy()
    if not cuda_runtime.is_available():
        raise cuda_unavailable_error(f"to({device})")
    if device.index >= cuda_runtime.device_count():
        raise RuntimeError(f"CUDA error: invalid device ordinal {device.index} (found {cuda_runtime.device_count()} "
                           "device(s))")
    return to_device(buf if isinstance(buf, np.ndarray) else to_host(buf), device.index)


# ---- interop: __cuda_array_interface__ ----------------------------------------------------------------------------
def cuda_array_interface(arr):
    """The CUDA Array Interface (version 3) of a device array; under the simulator the pointer is host memory."""
    desc = getattr(arr, "__cuda_array_interface__", None)
    if desc is not None:
        return desc
    host = arr._ary  # the simulator's FakeCUDAArray wraps a NumPy array
    return {"shape": tuple(host.shape), "typestr": host.dtype.str, "data": (host.ctypes.data, False),
            "strides": None if host.flags.c_contiguous else tuple(host.strides), "version": 3, "stream": None}


class _HostView:
    """Lets NumPy view the host memory a simulated device pointer names, keeping the exporter alive."""

    def __init__(self, desc, owner):
        self.owner = owner
        self.__array_interface__ = {"shape": tuple(desc["shape"]), "typestr": desc["typestr"],
                                    "data": tuple(desc["data"]), "strides": desc.get("strides"), "version": 3}


def as_device_array(obj):
    """A numba device array sharing memory with `obj`, which exposes __cuda_array_interface__ (zero-copy)."""
    from numba import config, cuda

    desc = obj.__cuda_array_interface__
    if config.ENABLE_CUDASIM:
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

        return FakeCUDAArray(np.asarray(_HostView(desc, obj)))
    return cuda.from_cuda_array_interface(desc, owner=obj)
