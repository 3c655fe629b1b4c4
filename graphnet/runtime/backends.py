"""Eager kernels per device type: run one registry op on device buffers (NumPy arrays on the CPU, device arrays on a
GPU), returning the output buffers. The CPU's is the op's NumPy impl; `runtime.cuda_backend` registers 'cuda'."""
from typing import Callable, NamedTuple

import numpy as np

from ..core.opdef import OpError
from . import storage


class Backend(NamedTuple):
    run: Callable      # (opdef, arrays, attrs, out_types) -> list of output buffers
    aliases: Callable  # (opdef, output buffer, input 0's buffer) -> whether the output views the input's memory


# Host kernels that are not the op's NumPy reference: `to_device`'s reference is a host copy, the kernel moves it.
HOST_KERNELS = {"to_device": lambda arrays, attrs: [storage.transfer(arrays[0], attrs["device"])]}


def run_cpu(opdef, arrays, attrs, out_types):
    """The op's NumPy reference implementation (or its HOST_KERNELS entry), results coerced to the inferred
    dtypes."""
    kernel = HOST_KERNELS.get(opdef.name)
    if kernel is not None:
        return kernel(arrays, attrs)
    result = opdef.impl(*arrays, **attrs)
    results = (result,) if opdef.n_outputs == 1 else result
    outputs = []
    for arr, typ in zip(results, out_types):
        if typ.device.type == "cpu" and (not isinstance(arr, np.ndarray) or arr.dtype != typ.dtype.np):
            arr = np.asarray(arr, dtype=typ.dtype.np)
        if typ.dtype.round is not None and not opdef.is_view:  # bfloat16: computed in float32, stored rounded
            arr = typ.dtype.round(arr)
        if tuple(arr.shape) != typ.shape:  # tuple(): a device array (to_device) may have its own shape type
            raise OpError(f"{opdef.name}: internal error, impl gave shape {arr.shape} but infer said {typ.shape}")
        outputs.append(arr)
    return outputs


def _cpu_aliases(opdef, out, inp):
    return opdef.is_view and np.may_share_memory(out, inp)


BACKENDS = {"cpu": Backend(run_cpu, _cpu_aliases)}
