"""Scan primitives along one dim: cumsum and cumprod (integer and bool inputs accumulate in int64, as PyTorch's)."""
import numpy as np

from ...core import dtype as dt
from ...core.bind import op
from ...core.opdef import OpDef, register
from .util import norm_dim


def _scan_infer(name):
    def infer(t, dim):
        norm_dim(name, dim, t.ndim)
        return t if t.dtype.is_floating_point else t.with_(dtype=dt.int64)

    return infer


def _scan_impl(fn):
    def impl(x, dim):
        if x.ndim == 0:
            return x.astype(x.dtype if x.dtype.kind == "f" else np.int64)
        extra = {} if x.dtype.kind == "f" else {"dtype": np.int64}
        with np.errstate(all="ignore"):
            return fn(x, axis=norm_dim("scan", dim, x.ndim), **extra)

    return impl


def reverse_cumsum(t, dim):
    """sum over positions >= k along `dim`, at every k: the adjoint of cumsum."""
    dims = (norm_dim("cumsum", dim, len(t.shape)),) if len(t.shape) else ()
    return op.flip(op.cumsum(op.flip(t, dims=dims), dim=dim), dims=dims)


def _cumprod_grad(c, g):
    """d out_j / d x_k = prod_{i <= j, i != k} x_i. Before the row's first zero: reverse_cumsum(g * out) / x (PyTorch's
    formula); at the first zero: reverse_cumsum(g * cumprod(x with that zero set to 1)), exact for any number of
    zeros; after it every product holds that zero, so 0. The output is recomputed from the input rather than saved:
    a saved output is detached, and double backward must see it depend on x."""
    x, dim = c.inputs[0], c.attrs["dim"]
    out = op.cumprod(x, dim=dim)
    zero = op.eq(x, 0.0)
    zeros_so_far = op.cumsum(zero, dim=dim)
    first = op.logical_and(zero, op.eq(zeros_so_far, 1))
    before = op.div(reverse_cumsum(op.mul(g, out), dim), op.where(zero, 1.0, x))
    at_first = reverse_cumsum(op.mul(g, op.cumprod(op.where(first, 1.0, x), dim=dim)), dim)
    return (op.where(op.eq(zeros_so_far, 0), before, op.where(first, at_first, 0.0)),)


register(OpDef("cumsum", "opaque", _scan_infer("cumsum"), _scan_impl(np.cumsum),
               lambda c, g: (reverse_cumsum(g, c.attrs["dim"]),)))
register(OpDef("cumprod", "opaque", _scan_infer("cumprod"), _scan_impl(np.cumprod), _cumprod_grad,
               save_inputs=(0,)))
