"""nn.functional: activations, dropout, linear, normalisation, embedding, one_hot and pad, built from graphnet ops.

Convolution/pooling live in functional_conv.py and losses in functional_loss.py; both are re-exported here.
"""
import math
import warnings

import numpy as np

from ..core import dtype as dt
from ..core.bind import bind
from ..frontend.api_random import uniform
from ..frontend.autograd import no_grad
from ..frontend.tensor import Tensor
from ..ir.ops.softmax import one_hot_error
from ..ir.ops.util import fmt_shape
from .functional_conv import adaptive_avg_pool2d, avg_pool1d, avg_pool2d, conv1d, conv2d, max_pool1d, max_pool2d  # noqa: F401
from .functional_loss import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
    softplus_stable,
)


def _concrete(t):
    """True when `t` holds real values (not a symbolic tracer tensor), so data-dependent checks may run."""
    return t._proxy is None


def _inplace(input, result, inplace):
    return input.copy_(result) if inplace else result


# ---- activations ------------------------------------------------------------------------------------------------
def relu(input, inplace=False):
    return _inplace(input, bind("relu", input), inplace)


def relu_(input):
    return relu(input, inplace=True)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return _inplace(input, input.clamp(min_val, max_val), inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _inplace(input, bind("where", input > 0, input, input * negative_slope), inplace)


def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha * (exp(x) - 1) otherwise (exp of the clamped input, so large x never overflows)."""
    negative = (input.clamp(max=0.0).exp() - 1.0) * alpha
    return _inplace(input, bind("where", input > 0, input, negative), inplace)


def selu(input, inplace=False):
    return _inplace(input, elu(input, 1.6732632423543772848170429916717) * 1.0507009873554804934193349852946, inplace)


_ERFC_COEFFS = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
                -0.82215223, 0.17087277)


def erfc(input):
    """1 - erf(x) by the Chebyshev fit of Numerical Recipes' erfcc (relative error < 1.2e-7 everywhere, tails
    included), built from elementwise ops since graphnet has no erf primitive."""
    z = input.abs()
    t = 1.0 / (z * 0.5 + 1.0)
    poly = t * _ERFC_COEFFS[-1]
    for c in reversed(_ERFC_COEFFS[1:-1]):
        poly = (poly + c) * t
    tail = t * (poly + _ERFC_COEFFS[0] - z * z).exp()
    return bind("where", input >= 0, tail, 2.0 - tail)


def erf(input):
    return 1.0 - erfc(input)


def gelu(input, approximate="none"):
    """x * Phi(x); approximate='tanh' uses PyTorch's tanh formula, 'none' the erf form (erfc to ~1.2e-7 relative)."""
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2.0 / math.pi)
        return input * 0.5 * (inner.tanh() + 1.0)
    if approximate != "none":
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return input * 0.5 * erfc(input * (-1.0 / math.sqrt(2.0)))


def sigmoid(input):
    return bind("sigmoid", input)


def tanh(input):
    return bind("tanh", input)


def silu(input, inplace=False):
    return _inplace(input, input * bind("sigmoid", input), inplace)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, linear above `threshold` (as PyTorch) and computed stably below it."""
    bx = input * beta
    return bind("where", bx > threshold, input, softplus_stable(bx) / beta)


def logsigmoid(input):
    return -softplus(-input)


def mish(input, inplace=False):
    return _inplace(input, input * softplus(input).tanh(), inplace)


def hardsigmoid(input, inplace=False):
    return _inplace(input, (input / 6.0 + 0.5).clamp(0.0, 1.0), inplace)


def hardswish(input, inplace=False):
    return _inplace(input, input * (input / 6.0 + 0.5).clamp(0.0, 1.0), inplace)


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


# ---- dropout ----------------------------------------------------------------------------------------------------
def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p); identity in eval mode.

    The mask comes from the counter-based `rand_uniform` op on the default generator's (seed, offset) state, which
    it advances: the same ops run eagerly and traced, so compiled dropout draws a fresh, reproducible mask per call.
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"dropout: expected a floating-point input, got {input.dtype.name}; convert it with "
                           ".float() first")
    if p == 1.0:
        return _inplace(input, input * 0.0, inplace)
    keep = bind("ge", uniform(input.shape, input.dtype, device=input.device), p)
    mask = bind("mul", bind("cast", keep, dtype=input.dtype), 1.0 / (1.0 - p))
    return _inplace(input, input * mask, inplace)


# ---- linear -----------------------------------------------------------------------------------------------------
def linear(input, weight, bias=None):
    """input @ weight.T + bias, with a clear error when the feature sizes disagree."""
    if input.shape[-1:] != weight.shape[-1:]:
        raise RuntimeError(f"linear: input has {input.shape[-1] if input.ndim else 0} features but weight expects "
                           f"{weight.shape[-1]} (input shape {fmt_shape(input.shape)}, weight shape "
                           f"{fmt_shape(weight.shape)})")
    out = input @ weight.t()
    return out if bias is None else out + bias


def bilinear(input1, input2, weight, bias=None):
    """y_k = x1^T W_k x2 + b_k for weight of shape (out, in1, in2)."""
    if input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(f"bilinear: input1 has {input1.shape[-1]} and input2 {input2.shape[-1]} features but weight "
                           f"has shape {fmt_shape(weight.shape)} (expects (out, in1, in2))")
    left = (input1.unsqueeze(-2).unsqueeze(-2) @ weight).squeeze(-2)
    out = (left * input2.unsqueeze(-2)).sum(-1)
    return out if bias is None else out + bias


# ---- normalisation ----------------------------------------------------------------------------------------------
def _channel_view(t, ndim):
    return t.reshape((1, -1) + (1,) * (ndim - 2))


def _affine(out, weight, bias, view):
    out = out if weight is None else out * view(weight)
    return out if bias is None else out + view(bias)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise over every dim but the channel dim 1; in training, batch stats (running stats updated with
    the unbiased variance under no_grad), otherwise the running stats."""
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected 2D or higher input (got {input.ndim}D input)")
    dims = (0,) + tuple(range(2, input.ndim))
    count = input.numel() // input.shape[1]
    view = lambda t: _channel_view(t, input.ndim)  # noqa: E731
    if training:
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}")
        mean = input.mean(dims)
        centred = input - view(mean)
        var = (centred * centred).mean(dims)
        if running_mean is not None:
            with no_grad():
                running_mean.mul_(1.0 - momentum).add_(mean.detach() * momentum)
                running_var.mul_(1.0 - momentum).add_(var.detach() * (momentum * count / (count - 1)))
        out = centred * view((var + eps).rsqrt())
    else:
        if running_mean is None:
            raise RuntimeError("batch_norm: running_mean and running_var must be given when training=False")
        out = (input - view(running_mean)) * view((running_var + eps).rsqrt())
    return _affine(out, weight, bias, view)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing `normalized_shape` dims (biased variance), then scale and shift."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape or len(shape) > input.ndim:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                           f"{', '.join(map(str, shape))}], but got input of size{list(input.shape)}")
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    centred = input - input.mean(dims, keepdim=True)
    out = centred * ((centred * centred).mean(dims, keepdim=True) + eps).rsqrt()
    return _affine(out, weight, bias, lambda t: t)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = input.shape[0], input.shape[1]
    if c % num_groups:
        raise RuntimeError(f"group_norm: Expected number of channels in input ({c}) to be divisible by num_groups "
                           f"({num_groups})")
    grouped = input.reshape(n, num_groups, -1)
    centred = grouped - grouped.mean(-1, keepdim=True)
    out = (centred * ((centred * centred).mean(-1, keepdim=True) + eps).rsqrt()).reshape(tuple(input.shape))
    return _affine(out, weight, bias, lambda t: _channel_view(t, input.ndim))


# ---- embedding, one_hot, pad, flatten ---------------------------------------------------------------------------
def _check_index_dtype(name, t):
    if not isinstance(t, Tensor) or t.dtype not in (dt.int64, dt.int32):
        got = t.type() if isinstance(t, Tensor) else type(t).__name__
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {got} instead (while checking arguments for {name})")


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    """Rows of `weight` picked by the integer `input`; rows at padding_idx get no gradient."""
    _check_index_dtype("embedding", input)
    if _concrete(input) and input.numel() and (input._host().min() < 0 or input._host().max() >= weight.shape[0]):
        raise IndexError(f"embedding: index out of range in self (indices must be in [0, {weight.shape[0] - 1}], got "
                         f"values in [{input._host().min()}, {input._host().max()}])")
    out = weight[input]
    if padding_idx is None:
        return out
    padding_idx = padding_idx % weight.shape[0]
    return bind("where", (input != padding_idx).unsqueeze(-1), out, out.detach())


def one_hot(tensor, num_classes=-1):
    """int64 class indices -> int64 one-hot vectors in a new last dim (num_classes=-1: max + 1)."""
    if not isinstance(tensor, Tensor) or tensor.dtype is not dt.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if _concrete(tensor) and tensor.numel():
        vals = tensor._host()
        num_classes = int(vals.max()) + 1 if num_classes == -1 else num_classes
        error = one_hot_error(vals, num_classes)
        if error is not None:
            raise error
    elif not _concrete(tensor) and num_classes > 0:  # checked in the compiled step; 0, a class, ignores nothing
        tensor = bind("check_targets", tensor, n_classes=num_classes, ignore_index=0, loss="one_hot")
    if num_classes < 0:
        raise RuntimeError("Can not infer total number of classes from empty tensor.")
    classes = Tensor._wrap(np.arange(num_classes, dtype=np.int64), dt.int64).to(tensor.device)
    return bind("cast", bind("eq", tensor.unsqueeze(-1), classes), dtype=dt.int64)


def pad(input, pad, mode="constant", value=None):
    """Constant padding; `pad` lists (left, right) pairs starting from the last dim."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported yet (only 'constant')")
    return bind("pad", input, pad=tuple(int(p) for p in pad), value=0 if value is None else value)


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(||input||_p along dim, eps)."""
    norm = (input.abs() ** p).sum(dim, keepdim=True) ** (1.0 / p)
    return input / norm.clamp(min=eps)

