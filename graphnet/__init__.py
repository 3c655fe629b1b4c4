"""graphnet: PyTorch's API, traced into an IR graph, optimized by passes and compiled with Numba.

The public names are listed in `__all__`: PyTorch's (dtypes, Tensor, the op functions, grad modes, ...), graphnet's
own `trace`, `compile` and `GraphBreak`, and the public subpackages.
"""
from .core.dtype import (bfloat16, bool_ as bool, float16, float32, float64, get_default_dtype, int8,  # noqa: A004
                         int16, int32, int64, promote_types, set_default_dtype, uint8)
from .core.dtype import DType as dtype
from .frontend.tensor import Size, Tensor
from .frontend.public import FUNCTIONS as _FUNCTIONS
from .frontend.api_reduce import return_types
from .frontend.creation import (BoolTensor, ByteTensor, DoubleTensor, FloatTensor, Generator, IntTensor,
                                LongTensor, default_generator, manual_seed)
from .frontend.autograd import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                                no_grad, set_grad_enabled)
from .core.device import device
from .frontend.tracer import GraphBreak, trace
from .frontend.compile import compile  # noqa: A004
from . import amp, autograd, cuda, optim
from .amp import autocast, is_autocast_enabled
from . import nn  # noqa: E402
from .serialization import load, save
from . import data, utils
from . import accelerator, backends, multiprocessing

float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16

globals().update(_FUNCTIONS)


def __getattr__(name):
    """graphnet.onnx on first use, as torch.onnx: importing onnx costs time that training code does not need."""
    if name == "onnx":
        import importlib

        return importlib.import_module(".onnx", __name__)
    raise AttributeError(f"module 'graphnet' has no attribute {name!r}")


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(input):
    return input.numel()


__version__ = "0.1.0"

__all__ = [
    # dtypes
    "dtype", "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
    "float", "double", "half", "long", "int", "short", "get_default_dtype", "set_default_dtype", "promote_types",
    # tensors, devices, generators
    "Tensor", "Size", "device", "is_tensor", "numel", "return_types",
    "BoolTensor", "ByteTensor", "DoubleTensor", "FloatTensor", "IntTensor", "LongTensor",
    "Generator", "default_generator", "manual_seed",
    # grad modes
    "enable_grad", "inference_mode", "is_grad_enabled", "is_inference_mode_enabled", "no_grad", "set_grad_enabled",
    # mixed precision (regions run in full precision: amp/autocast_mode.py)
    "autocast", "is_autocast_enabled",
    # tracing and compiling (graphnet's own)
    "GraphBreak", "trace", "compile",
    # checkpoints
    "load", "save",
    # subpackages
    "accelerator", "amp", "autograd", "backends", "cuda", "data", "multiprocessing", "nn", "optim", "serialization",
    "utils",
    # the op functions (graphnet.<name> = frontend/api_*.py's @export)
    *sorted(_FUNCTIONS),
]
