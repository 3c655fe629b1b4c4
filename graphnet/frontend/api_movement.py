"""Shape functions: view/reshape, permute/transpose, expand, squeeze/unsqueeze, flatten, contiguous."""
import numpy as np

from ..ir.ops.util import norm_dim
from .api import export
from .dispatch import call
from .tensor import Tensor


def _size_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def infer_size(opname, shape, numel):
    """Resolve one -1 in `shape` from the element count, with PyTorch's errors."""
    if list(shape).count(-1) > 1:
        raise RuntimeError(f"{opname}: only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"{opname}: shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    if known != numel and -1 not in shape:
        raise RuntimeError(f"{opname}: shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


@export("reshape")
def reshape(input, *shape):
    return call("reshape", input, shape=infer_size("reshape", _size_args(shape), input.numel()))


@export("view", function=False)
def view(self, *shape):
    """Like reshape, but refuses when the result could not share storage (non-contiguous strides)."""
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
        return self.to(shape[0])
    shape = infer_size("view", _size_args(shape), self.numel())
    if self._device.type == "cpu" and self._proxy is None:
        probe = self._data.view()
        try:
            probe.shape = shape
        except AttributeError:
            raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                               "dimension spans across two contiguous subspaces). Use .reshape(...) instead.") from None
    return call("reshape", self, shape=shape)


@export("view_as", function=False)
def view_as(self, other):
    return view(self, tuple(other.shape))


@export("reshape_as", function=False)
def reshape_as(self, other):
    return reshape(self, tuple(other.shape))


@export("permute")
def permute(input, *dims):
    dims = _size_args(dims)
    return call("permute", input, dims=tuple(norm_dim("permute", d, input.ndim) for d in dims))


@export("transpose", "swapaxes")
def transpose(input, dim0, dim1):
    dims = list(range(input.ndim))
    a, b = norm_dim("transpose", dim0, input.ndim), norm_dim("transpose", dim1, input.ndim)
    dims[a], dims[b] = dims[b], dims[a]
    return call("permute", input, dims=tuple(dims)) if input.ndim > 1 else input


@export("t")
def t(input):
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else input


@export("expand", function=False)
def expand(self, *sizes):
    sizes = _size_args(sizes)
    lead = len(sizes) - self.ndim
    shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    return call("expand", self, shape=shape)


@export("expand_as", function=False)
def expand_as(self, other):
    return call("expand", self, shape=tuple(other.shape))


@export("broadcast_to")
def broadcast_to(input, size):
    return expand(input, *size)


@export("squeeze")
def squeeze(input, dim=None):
    if dim is None:
        shape = tuple(s for s in input.shape if s != 1)
    else:
        dims = {norm_dim("squeeze", d, input.ndim) for d in ((dim,) if isinstance(dim, int) else dim)}
        shape = tuple(s for i, s in enumerate(input.shape) if not (i in dims and s == 1))
    return call("reshape", input, shape=shape)


@export("unsqueeze")
def unsqueeze(input, dim):
    d = norm_dim("unsqueeze", dim, input.ndim + 1)
    shape = list(input.shape)
    shape.insert(d, 1)
    return call("reshape", input, shape=tuple(shape))


@export("flatten")
def flatten(input, start_dim=0, end_dim=-1):
    if input.ndim == 0:
        return reshape(input, 1)
    s, e = norm_dim("flatten", start_dim, input.ndim), norm_dim("flatten", end_dim, input.ndim)
    shape = tuple(input.shape[:s]) + (int(np.prod(input.shape[s:e + 1])),) + tuple(input.shape[e + 1:])
    return call("reshape", input, shape=shape)


@export("contiguous", function=False)
def contiguous(self):
    return self if self.is_contiguous() else call("copy", self)


Tensor.is_contiguous = lambda self: self._proxy is not None or bool(self._data.flags.c_contiguous)
