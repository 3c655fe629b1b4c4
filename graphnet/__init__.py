"""graphnet: PyTorch's API, traced into an IR graph, optimized by passes and compiled with Numba."""
from .core import dtype as _dt
from .core.dtype import (bool_ as bool, float16, float32, float64, get_default_dtype, int8, int16, int32,  # noqa: A004
                         int64, promote_types, set_default_dtype, uint8)
from .core.dtype import DType as dtype
from .frontend.tensor import Size, Tensor
from .frontend import api_elementwise, api_reduce, api_movement, api_convert  # noqa: F401  (publish the ops)
from .frontend import api_indexing  # noqa: F401
from .frontend import api_linalg  # noqa: F401
from .frontend import api_random  # noqa: F401
from .frontend import interop  # noqa: F401  (from_dlpack, Tensor.__dlpack__)
from .frontend.api_reduce import return_types  # noqa: F401
from .frontend.api import FUNCTIONS as _FUNCTIONS
from .frontend.creation import (BoolTensor, ByteTensor, DoubleTensor, FloatTensor, Generator, IntTensor,  # noqa: F401
                                LongTensor, default_generator, manual_seed)
from .frontend.autograd import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,  # noqa: F401
                                no_grad, set_grad_enabled)
from .core.device import device
from .frontend.tracer import GraphBreak, trace  # noqa: F401
from .frontend.compile import compile  # noqa: F401,A004
from . import autograd, cuda, optim  # noqa: F401
from . import nn  # noqa: F401,E402
from .serialization import load, save  # noqa: F401
from . import data, utils  # noqa: F401

float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16

globals().update(_FUNCTIONS)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(input):
    return input.numel()


__version__ = "0.1.0"
