"""log_softmax as one primitive: a single stable pass per slice, and one library kernel in compiled programs
(it sits in every cross-entropy). Its gradient is written with ops: g - exp(out) * sum(g)."""
import numpy as np

from .registry import OpDef, OpError, op, register
from .util import norm_dim


def _infer(t, dim):
    if not t.dtype.is_floating_point:
        raise OpError(f"log_softmax: expected a floating-point tensor, got {t.dtype.name}")
    if t.ndim == 0:
        raise OpError("log_softmax: expected a tensor with at least 1 dim (the frontend reshapes 0-d inputs)")
    norm_dim("log_softmax", dim, t.ndim)
    return t


def _impl(x, dim):
    """x - max - log(sum(exp(x - max))), the max taken as 0 for an infinite max (an all -inf slice gives NaN, as in
    PyTorch, instead of a warning from inf - inf)."""
    if x.shape[dim] == 0:
        return x.copy()
    m = np.max(x, axis=dim, keepdims=True)
    m = np.where(np.isinf(m), np.zeros_like(m), m)
    with np.errstate(all="ignore"):
        shifted = x - m
        return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


def _grad(c, g):
    out, dim = c.outputs[0], c.attrs["dim"]
    return (op.sub(g, op.mul(op.exp(out), op.sum(g, dims=(dim,), keepdim=True))),)


register(OpDef("log_softmax", "opaque", _infer, _impl, _grad, save_outputs=(0,), kernel="log_softmax"))
