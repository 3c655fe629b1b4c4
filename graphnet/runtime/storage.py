"""Buffers: NumPy arrays on the host, numba device arrays on a GPU, and copies between them."""
import numpy as np


def cuda_unavailable_error(what="CUDA"):
    return RuntimeError(f"{what}: no CUDA GPU is available here (graphnet.cuda.is_available() is False). Keep the "
                        "tensors on the CPU, or run on a machine with an NVIDIA GPU and numba-cuda installed.")


def transfer(buf, device):
    """Copy a buffer to `device`: host<->GPU through numba.cuda."""
    from . import cuda_runtime

    if device.type == "cpu":
        return buf.copy_to_host() if not isinstance(buf, np.ndarray) else buf.copy()
    if not cuda_runtime.is_available():
        raise cuda_unavailable_error(f"to({device})")
    if device.index >= cuda_runtime.device_count():
        raise RuntimeError(f"CUDA error: invalid device ordinal {device.index} (found {cuda_runtime.device_count()} "
                           "device(s))")
    return cuda_runtime.to_device(buf, device)
