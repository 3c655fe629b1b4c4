"""Zero-copy exchange with other array libraries: DLPack for CPU tensors, the CUDA Array Interface for GPU ones.

graphnet.from_dlpack(obj) shares obj's memory: NumPy arrays, PyTorch/JAX CPU tensors (anything with __dlpack__ on
the host) and device arrays exposing __cuda_array_interface__ (numba, CuPy). Tensor.__dlpack__ lets
np.from_dlpack(t) (or torch.from_dlpack) view a CPU tensor's storage.
"""
import numpy as np

from ..core import dtype as dt
from ..core.device import device
from ..runtime.storage import as_device_array
from .api import export
from .tensor import Tensor

_DL_CPU, _DL_CUDA = 1, 2  # DLPack's kDLCPU and kDLCUDA device types


@export("from_dlpack", method=False)
def from_dlpack(ext_tensor):
    """A tensor sharing memory with `ext_tensor` (a DLPack producer on the CPU, or a CUDA Array Interface object)."""
    if isinstance(ext_tensor, Tensor):
        return ext_tensor
    if hasattr(ext_tensor, "__cuda_array_interface__"):
        return from_cuda_array(ext_tensor)
    if not hasattr(ext_tensor, "__dlpack__"):
        raise TypeError(f"from_dlpack(): expected an object implementing __dlpack__ (a NumPy array, a CPU tensor of "
                        f"another library) or __cuda_array_interface__ (a numba/CuPy device array), got "
                        f"{type(ext_tensor).__name__}. Pass the array object itself (not a DLPack capsule), or copy "
                        "it with graphnet.tensor(np.asarray(obj))")
    kind, _ = ext_tensor.__dlpack_device__()
    if kind != _DL_CPU:
        raise RuntimeError(f"from_dlpack(): only host (CPU) DLPack tensors can be imported (device type {kind}); for "
                           "GPU memory pass an object exposing __cuda_array_interface__ (e.g. a CuPy array)")
    arr = np.from_dlpack(ext_tensor)
    return Tensor._wrap(arr, dt.as_dtype(arr.dtype))


def from_cuda_array(obj):
    """graphnet.as_tensor on an object exposing __cuda_array_interface__: a CUDA tensor sharing its memory."""
    arr = as_device_array(obj)
    if not arr.is_c_contiguous():
        raise RuntimeError(f"as_tensor: only C-contiguous CUDA arrays can be shared (got strides {arr.strides}); "
                           "make a contiguous copy first")
    return Tensor._wrap(arr, dt.as_dtype(np.dtype(arr.dtype)), device("cuda", 0))


@export("__dlpack__", function=False)
def __dlpack__(self, stream=None, **kwargs):  # noqa: N807 - the protocol's name
    """The DLPack capsule of a CPU tensor's storage (consumers: np.from_dlpack, torch.from_dlpack)."""
    if self._proxy is not None:
        self._graph_break("__dlpack__()")
    if self._requires_grad:
        raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")
    if self._device.type != "cpu":
        raise BufferError(f"__dlpack__(): graphnet exports DLPack for CPU tensors only (this one is on {self._device});"
                          " share GPU memory through __cuda_array_interface__ (numba.cuda.as_cuda_array(t), "
                          "cupy.asarray(t)) or copy with t.cpu()")
    if not self._data.flags.writeable:
        raise BufferError("__dlpack__(): this tensor is a read-only view (e.g. from expand()); DLPack cannot mark "
                          "memory read-only, so export t.clone() instead")
    return self._data.__dlpack__(stream=stream, **kwargs)


@export("__dlpack_device__", function=False)
def __dlpack_device__(self):  # noqa: N807 - the protocol's name
    """(DLPack device type, index): (1, 0) on the CPU, (2, i) on cuda:i."""
    if self._device.type == "cpu":
        return _DL_CPU, 0
    return _DL_CUDA, self._device.index or 0
