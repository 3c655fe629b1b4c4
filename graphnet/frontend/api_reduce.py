"""Reductions: sum, mean (composites of the `sum` primitive) with dim/keepdim/dtype as PyTorch has them."""
from ..ir.ops.util import norm_dims
from .api import export
from .dispatch import call


def _dims(dim):
    return None if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)


@export("sum", out=True)
def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    x = input if dtype is None else input.to(dtype)
    return call("sum", x, dims=_dims(dim), keepdim=keepdim)


@export("mean", out=True)
def mean(input, dim=None, keepdim=False, *, dtype=None):
    """sum / count; integer inputs are refused as PyTorch does (pass dtype= to pick a float type)."""
    x = input if dtype is None else input.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point or "
                           f"complex dtype. Got: {x.dtype.name.capitalize()}")
    count = 1
    for d in norm_dims("mean", _dims(dim), x.ndim):
        count *= x.shape[d]
    return call("div", call("sum", x, dims=_dims(dim), keepdim=keepdim), float(count))
