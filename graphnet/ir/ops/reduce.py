"""Reduction primitives: sum, mean, prod, amax/amin, argmax/argmin, and sum_to (the adjoint of broadcasting)."""
import numpy as np

from ...core import dtype as dt
from ...core.bind import op
from ...core.opdef import OpDef, OpError, register
from .util import fmt_shape, norm_dim, norm_dims


def reduced_shape(shape, dims, keepdim):
    """The shape left after reducing `dims` (normalised), with size-1 dims kept when `keepdim`."""
    return tuple(1 if i in dims else s for i, s in enumerate(shape)) if keepdim else \
        tuple(s for i, s in enumerate(shape) if i not in dims)


def _int64_unless_float(d):
    """Integer and bool sums/products accumulate in int64, as PyTorch's do."""
    return d if d.is_floating_point else dt.int64


_TORCH_NAMES = {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
                "float16": "Half", "float32": "Float", "float64": "Double"}


def check_nonempty(name, t, dims):
    """max-like reductions have no identity: reducing a zero-size dim is an IndexError, as in PyTorch, which checks
    this before repeated dims and names the dim as the caller wrote it."""
    for d in (dims,) if isinstance(dims, int) else dims:
        if t.ndim and t.shape[norm_dim(name, d, t.ndim)] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size (input shape "
                             f"{fmt_shape(t.shape)}).")


def check_dim_given(name, t, error):
    """A max-like reduction of an empty tensor over all dims: PyTorch asks for a dim (amax/amin raise RuntimeError,
    argmax/argmin IndexError, each with its own wording)."""
    if 0 in t.shape:
        hint = " Specify the reduction dim with the 'dim' argument." if error is OpError else ""
        raise error(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.{hint}")


def _reduce_infer(name, out_dtype=None, nonempty=False, float_only=False):
    """Shape rule shared by the dims/keepdim reductions."""

    def infer(t, dims, keepdim=False):
        if nonempty and dims is None:
            check_dim_given(name, t, OpError)
        elif nonempty:
            check_nonempty(name, t, dims)
        axes = norm_dims(name, dims, t.ndim)
        if float_only and not t.dtype.is_floating_point:
            raise OpError(f"{name}(): could not infer output dtype. Input dtype must be either a floating point or "
                          f"complex dtype. Got: {_TORCH_NAMES[t.dtype.name]}")
        return t.with_(shape=reduced_shape(t.shape, axes, keepdim), dtype=(out_dtype or (lambda d: d))(t.dtype))

    return infer


def _reduce_impl(fn, int64=False):
    """Wrap a NumPy reduction taking axis/keepdims; warnings (mean of nothing) give IEEE results quietly."""

    def impl(x, dims, keepdim=False):
        axes = norm_dims("reduce", dims, x.ndim)
        extra = {"dtype": np.int64} if int64 and x.dtype.kind != "f" else {}
        with np.errstate(all="ignore"):
            return np.asarray(fn(x, axis=axes, keepdims=keepdim, **extra))

    return impl


def keep(c, t):
    """Reshape a reduced tensor (or gradient) to the keepdim shape, so it broadcasts against the input."""
    shape = c.in_types[0].shape
    target = reduced_shape(shape, norm_dims("reduce", c.attrs["dims"], len(shape)), True)
    return t if tuple(t.shape) == target else op.reshape(t, shape=target)


def _sum_grad(c, g):
    return (op.expand(keep(c, g), shape=c.in_types[0].shape),)


def _mean_grad(c, g):
    shape = c.in_types[0].shape
    count = 1
    for d in norm_dims("mean", c.attrs["dims"], len(shape)):
        count *= shape[d]
    return (op.div(op.expand(keep(c, g), shape=shape), float(count)),)


def _extreme_grad(c, g):
    """amax/amin: the gradient is split evenly among the elements equal to the extreme (PyTorch's rule)."""
    mask = op.cast(op.eq(c.inputs[0], keep(c, c.outputs[0])), dtype=g.dtype)
    count = op.sum(mask, dims=c.attrs["dims"], keepdim=True)
    return (op.div(op.mul(keep(c, g), mask), count),)


def _prod_grad(c, g):
    """d prod / d x_i = product of the others: out / x_i without zeros, the others' product at a lone zero, else 0."""
    x, dims = c.inputs[0], c.attrs["dims"]
    zero = op.eq(x, 0.0)
    safe = op.where(zero, 1.0, x)
    nonzero_prod = op.prod(safe, dims=dims, keepdim=True)
    zeros = op.sum(zero, dims=dims, keepdim=True)
    at_lone_zero = op.where(op.logical_and(op.eq(zeros, 1), zero), nonzero_prod, 0.0)
    local = op.where(op.eq(zeros, 0), op.div(nonzero_prod, safe), at_lone_zero)
    return (op.mul(keep(c, g), local),)


register(OpDef("sum", "reduce", _reduce_infer("sum", _int64_unless_float), _reduce_impl(np.sum, int64=True),
               _sum_grad))
register(OpDef("mean", "reduce", _reduce_infer("mean", float_only=True), _reduce_impl(np.mean), _mean_grad))
register(OpDef("prod", "reduce", _reduce_infer("prod", _int64_unless_float), _reduce_impl(np.prod, int64=True),
               _prod_grad, save_inputs=(0,)))
for _name, _fn in (("amax", np.amax), ("amin", np.amin)):
    register(OpDef(_name, "reduce", _reduce_infer(_name, nonempty=True), _reduce_impl(_fn), _extreme_grad,
                   save_inputs=(0,), save_outputs=(0,)))


def _arg_infer(name):
    def infer(t, dim=None, keepdim=False):
        if dim is None:
            check_dim_given(name, t, IndexError)
            return t.with_(shape=(1,) * t.ndim if keepdim else (), dtype=dt.int64)
        d = norm_dim(name, dim, t.ndim)
        check_nonempty(name, t, dim)
        return t.with_(shape=reduced_shape(t.shape, (d,) if t.ndim else (), keepdim), dtype=dt.int64)

    return infer


def _arg_impl(fn):
    """Index of the first extreme (NaN counts as the extreme, as in PyTorch); dim=None means the flattened input."""

    def impl(x, dim=None, keepdim=False):
        if x.ndim == 0:
            return np.zeros((), np.int64)
        if dim is None:
            out = np.asarray(fn(x.reshape(-1)))
            return out.reshape((1,) * x.ndim) if keepdim else out
        return np.asarray(fn(x, axis=norm_dim("arg", dim, x.ndim), keepdims=keepdim))

    return impl


register(OpDef("argmax", "reduce", _arg_infer("argmax"), _arg_impl(np.argmax)))
register(OpDef("argmin", "reduce", _arg_infer("argmin"), _arg_impl(np.argmin)))


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
