"""graphnet.accelerator: PyTorch's device-agnostic accelerator queries; CUDA (numba.cuda) is graphnet's only one."""
from . import cuda
from .core.device import device

__all__ = ["current_accelerator", "device_count", "is_available"]


def is_available():
    return cuda.is_available()


def current_accelerator(check_available=False):
    """device('cuda') where a GPU is usable, else None (graphnet builds no accelerator it could not run)."""
    return device("cuda") if cuda.is_available() else None


def device_count():
    return cuda.device_count() if cuda.is_available() else 0
