"""Reduction primitives: sum over dims, and sum_to (the adjoint of broadcasting)."""
import numpy as np

from .. import dtype as dt
from .registry import OpDef, OpError, op, register
from .util import fmt_shape, norm_dims


def _reduced_shape(shape, dims, keepdim):
    return tuple(1 if i in dims else s for i, s in enumerate(shape)) if keepdim else \
        tuple(s for i, s in enumerate(shape) if i not in dims)


def _sum_dtype(d):
    return d if d.is_floating_point else dt.int64


def _sum_infer(t, dims, keepdim=False):
    dims = norm_dims("sum", dims, t.ndim)
    return t.with_(shape=_reduced_shape(t.shape, dims, keepdim), dtype=_sum_dtype(t.dtype))


def _sum_grad(c, g):
    shape = c.in_types[0].shape
    dims = norm_dims("sum", c.attrs["dims"], len(shape))
    return (op.expand(op.reshape(g, shape=_reduced_shape(shape, dims, True)), shape=shape),)


register(OpDef("sum", "reduce", _sum_infer,
               lambda x, dims, keepdim=False: np.sum(x, axis=dims, keepdims=keepdim, dtype=_sum_dtype(
                   dt.as_dtype(x.dtype)).np),
               _sum_grad))


def _sum_to_axes(in_shape, shape):
    lead = len(in_shape) - len(shape)
    return lead, tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and in_shape[lead + i] != 1)


def _sum_to_infer(t, shape):
    lead = t.ndim - len(shape)
    if lead < 0 or any(s not in (1, h) for s, h in zip(shape, t.shape[lead:])):
        raise OpError(f"sum_to: cannot sum a tensor of shape {fmt_shape(t.shape)} to shape {fmt_shape(shape)}")
    return t.with_(shape=tuple(shape))


def _sum_to_impl(x, shape):
    lead, axes = _sum_to_axes(x.shape, shape)
    return np.sum(x, axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)


register(OpDef("sum_to", "reduce", _sum_to_infer, _sum_to_impl,
               lambda c, g: (op.expand(g, shape=c.in_types[0].shape),)))
