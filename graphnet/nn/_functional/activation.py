"""nn.functional activations: ReLU family, ELU/SELU, GELU, sigmoid/tanh, SiLU, softplus and log-sigmoid, Mish, the
hard approximations, softsign, GLU, PReLU, and softmax/softmin/log_softmax."""
import math
import warnings

from ...core.bind import bind
from .common import maybe_inplace


def softplus_stable(x):
    """log(1 + exp(x)) with no overflow and the exact derivative sigmoid(x) everywhere, 0 included."""
    ax = x.abs()
    return (ax + x) * 0.5 + ((-ax).exp() + 1.0).log()


def relu(input, inplace=False):
    return maybe_inplace(input, bind("relu", input), inplace)


def relu_(input):
    return relu(input, inplace=True)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return maybe_inplace(input, input.clamp(min_val, max_val), inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return maybe_inplace(input, bind("where", input > 0, input, input * negative_slope), inplace)


def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha * (exp(x) - 1) otherwise (exp of the clamped input, so large x never overflows)."""
    negative = (input.clamp(max=0.0).exp() - 1.0) * alpha
    return maybe_inplace(input, bind("where", input > 0, input, negative), inplace)


def selu(input, inplace=False):
    scaled = elu(input, 1.6732632423543772848170429916717) * 1.0507009873554804934193349852946
    return maybe_inplace(input, scaled, inplace)


def erfc(input):
    return bind("erfc", input)


def erf(input):
    return bind("erf", input)


def gelu(input, approximate="none"):
    """x * Phi(x); approximate='tanh' uses PyTorch's tanh formula, 'none' the erf form."""
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2.0 / math.pi)
        return input * 0.5 * (inner.tanh() + 1.0)
    if approximate != "none":
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return input * 0.5 * (bind("erf", input * (1.0 / math.sqrt(2.0))) + 1.0)


def sigmoid(input):
    return bind("sigmoid", input)


def tanh(input):
    return bind("tanh", input)


def silu(input, inplace=False):
    return maybe_inplace(input, input * bind("sigmoid", input), inplace)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, linear above `threshold` (as PyTorch) and computed stably below it."""
    bx = input * beta
    return bind("where", bx > threshold, input, softplus_stable(bx) / beta)


def logsigmoid(input):
    return -softplus(-input)


def mish(input, inplace=False):
    return maybe_inplace(input, input * softplus(input).tanh(), inplace)


def hardsigmoid(input, inplace=False):
    return maybe_inplace(input, (input / 6.0 + 0.5).clamp(0.0, 1.0), inplace)


def hardswish(input, inplace=False):
    return maybe_inplace(input, input * (input / 6.0 + 0.5).clamp(0.0, 1.0), inplace)


def _softmax_dim(name, ndim, dim):
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an "
                  "argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return x.softmax(_softmax_dim("softmax", x.ndim, dim))


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    return softmax(-input, _softmax_dim("softmin", input.ndim, dim), dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return x.log_softmax(_softmax_dim("log_softmax", x.ndim, dim))



def softsign(input):
    return input / (input.abs() + 1.0)


def glu(input, dim=-1):
    """a * sigmoid(b) for the two halves a, b of `input` along dim."""
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    if not -input.dim() <= dim < input.dim():
        raise IndexError(f"Dimension out of range (expected to be in range of [{-input.dim()}, {input.dim() - 1}], "
                         f"but got {dim})")
    size = input.shape[dim]
    if size % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim % input.dim()} is size {size}")
    a, b = input.chunk(2, dim)
    return a * bind("sigmoid", b)


def prelu(input, weight):
    """max(0, x) + weight * min(0, x), with one weight or one per channel (dim 1); a 0-d input takes one weight."""
    if input.dim() == 0 and weight.numel() != 1:
        raise RuntimeError("Not allow zero-dim input tensor.")
    if weight.dim() > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.dim()}")
    channels = input.shape[1] if input.dim() >= 2 else 1
    if weight.numel() != 1 and weight.numel() != channels:
        raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                           f"{weight.numel()} and channel size = {channels}.")
    slope = weight.reshape(()) if weight.numel() == 1 else weight.reshape((-1,) + (1,) * (input.dim() - 2))
    return bind("where", input > 0, input, input * slope)
