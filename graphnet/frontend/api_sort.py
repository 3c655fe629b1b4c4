"""Ordering with PyTorch's signatures: sort and topk (values, indices), argsort. Every one is the `argsort`
primitive's indices and a gather of the values through them, so the values' gradient scatters back to the input."""
from ..core.bind import bind
from ..ir.ops.util import norm_dim
from .api import export
from .api_reduce import return_types


def _ordered(name, input, dim, descending, k=None):
    """(values, indices) of `input` ordered along `dim`, the first `k` of them when given; a 0-d input is handled as
    one element and given back 0-d."""
    x = bind("reshape", input, shape=(1,)) if input.ndim == 0 else input
    d = norm_dim(name, dim, x.ndim)
    if k is not None and not 0 <= k <= x.shape[d]:
        raise RuntimeError("selected index k out of range")
    indices = bind("argsort", x, dim=d, descending=descending)
    if k is not None and k != x.shape[d]:
        indices = bind("getitem", indices, index=(("slice", None, None, None),) * d + (("slice", 0, k, 1),))
    values = bind("gather", x, indices, dim=d)
    if input.ndim == 0:
        values, indices = (bind("reshape", t, shape=()) for t in (values, indices))
    return values, indices


@export("sort")
def sort(input, dim=-1, descending=False, stable=False):
    """Always a stable sort (PyTorch allows any order of equal elements when stable=False)."""
    return return_types.sort(*_ordered("sort", input, dim, descending))


@export("argsort")
def argsort(input, dim=-1, descending=False, stable=False):
    return _ordered("argsort", input, dim, descending)[1]


@export("topk")
def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    """The k largest (or smallest) along `dim`, always in sorted order; equal values keep their input order."""
    return return_types.topk(*_ordered("topk", input, dim, largest, int(k)))
