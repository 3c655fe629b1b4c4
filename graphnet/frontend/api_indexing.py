"""Tensor indexing: `x[key]` (views for basic keys), `x[key] = v`, index_put, index_select, gather, masked_select.

A Python key is split into a basic spec (ints, slices, None; tensors replaced by full slices) and advanced index
arrays packed into one int64 tensor, so the ops get hashable attrs and a fixed number of inputs.
"""
import operator

import numpy as np

from ..core import dtype as dt
from ..core.bind import bind
from ..ir.ops import OPS
from ..ir.ops.indexing import REDUCES, put_into
from ..ir.ops.util import norm_dim
from . import autograd
from .api import export
from .api_movement import broadcast_tensors
from .tensor import Tensor

_FULL = ("slice", None, None, None)
_NONE = ("none",)


def _as_int(v):
    return None if v is None else operator.index(v)


def _classify(k):
    """One key item as ('basic', spec_item) or ('array', ndarray)."""
    if k is None:
        return "basic", _NONE
    if k is Ellipsis:
        return "basic", ("ellipsis",)
    if isinstance(k, (bool, np.bool_)):
        return "array", np.asarray(bool(k))
    if isinstance(k, slice):
        return "basic", ("slice", _as_int(k.start), _as_int(k.stop), _as_int(k.step))
    if isinstance(k, (int, np.integer)):
        return "basic", ("int", int(k))
    if isinstance(k, range):  # a sequence of ints, as a list of them would be
        return "array", np.arange(k.start, k.stop, k.step, dtype=np.int64)
    if isinstance(k, Tensor) and k.ndim == 0 and k.dtype.category == 1:
        return "basic", ("int", int(k.item()))
    if isinstance(k, (Tensor, list, tuple, np.ndarray)):
        arr = k._host() if isinstance(k, Tensor) else np.asarray(_host_list(k))
        if arr.size == 0 and arr.dtype.kind not in "iub":
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iub":
            raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors (got {arr.dtype})")
        return "array", arr
    raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid "
                     f"indices (got {type(k).__name__})")


def _host_list(k):
    """A nested list/tuple index (possibly holding tensors) as a NumPy array."""
    if isinstance(k, np.ndarray):
        return k
    return [x.item() if isinstance(x, Tensor) else _host_list(x) if isinstance(x, (list, tuple)) else x for x in k]


def _consumed(items):
    """How many of the tensor's dims the key items index (a bool mask takes as many as it has)."""
    n = 0
    for kind, v in items:
        if kind == "array":
            n += v.ndim if v.dtype.kind == "b" else 1
        elif v[0] in ("int", "slice"):
            n += 1
    return n


def parse_key(shape, key):
    """Split `key` for a tensor of `shape` into (basic spec, packed int64 index array (k, *B), dims)."""
    items = [_classify(k) for k in (key if isinstance(key, tuple) else (key,))]
    ndim = len(shape)
    if _consumed(items) > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    spec, arrays, dims = [], [], []
    d_in = d_out = 0
    for kind, v in items:
        if kind == "basic":
            if v[0] == "ellipsis":
                n = ndim - _consumed(items)
                d_in, d_out = d_in + n, d_out + n
            else:
                d_in += v[0] != "none"
                d_out += v[0] != "int"
            spec.append(v)
        elif v.dtype.kind == "b":
            d_in, d_out = _add_mask(shape, v, spec, arrays, dims, d_in, d_out)
        else:
            arrays.append(_checked(v, shape[d_in], d_in))
            spec.append(_FULL)
            dims.append(d_out)
            d_in, d_out = d_in + 1, d_out + 1
    return tuple(spec), _pack(arrays), tuple(dims)


def _add_mask(shape, mask, spec, arrays, dims, d_in, d_out):
    """A bool mask over m dims becomes m index arrays (its nonzero positions); a 0-d mask adds a dim of 1 or 0.
    Appends to spec/arrays/dims and returns the advanced (d_in, d_out)."""
    if mask.ndim == 0:
        if not mask:
            arrays.append(np.zeros(0, np.int64))
            dims.append(d_out)
        spec.append(_NONE)
        return d_in, d_out + 1
    for j, n in enumerate(mask.shape):
        if d_in + j >= len(shape) or shape[d_in + j] != n:
            have = shape[d_in + j] if d_in + j < len(shape) else None
            raise IndexError(f"The shape of the mask {list(mask.shape)} at index {j} does not match the shape of the "
                             f"indexed tensor {list(shape)} at index {d_in + j} (size {have})")
    for j, nz in enumerate(np.nonzero(mask)):
        arrays.append(nz)
        spec.append(_FULL)
        dims.append(d_out + j)
    return d_in + mask.ndim, d_out + mask.ndim


def _checked(arr, size, d):
    bad = (arr < -size) | (arr >= size)
    if bad.any():
        raise IndexError(f"index {int(arr[bad].flat[0])} is out of bounds for dimension {d} with size {size}")
    return np.where(arr < 0, arr + size, arr).astype(np.int64, copy=False)


def _pack(arrays):
    if not arrays:
        return np.zeros((0,), np.int64)
    try:
        return np.stack(np.broadcast_arrays(*arrays))
    except ValueError:
        raise IndexError("shape mismatch: indexing tensors could not be broadcast together with shapes "
                         f"{', '.join(str(list(a.shape)) for a in arrays)}") from None


def _index_tensor(packed, like):
    t = Tensor._wrap(packed, dt.int64)
    return t if like.device.type == "cpu" else t.to(like.device)


def _getitem(self, key):
    """Basic keys give a view sharing storage and version counter; tensor/list/bool keys give a copy."""
    spec, packed, dims = parse_key(tuple(self.shape), key)
    if not dims:
        return bind("getitem", self, index=spec)
    return bind("index", self, _index_tensor(packed, self), index=spec, dims=dims)


def _put(self, spec, packed, dims, value, accumulate, name):
    """self[spec][packed] = value (or += with accumulate), in place, recorded for autograd when needed."""
    v = value if isinstance(value, Tensor) else Tensor._scalar(value, self.dtype, self.device)
    if v.dtype is not self.dtype:
        v = bind("cast", v, dtype=self.dtype)
    idx = _index_tensor(packed, self)
    if (autograd.is_grad_enabled() and (self.requires_grad or v.requires_grad)) or self.device.type != "cpu":
        result = bind("index_put", self, idx, v, index=spec, dims=dims, accumulate=accumulate)
        return self._assign_inplace(result, name)
    OPS["index_put"].infer(self._type(), idx._type(), v._type(), index=spec, dims=dims)
    if not self._data.flags.writeable:
        raise RuntimeError(f"{name}: unsupported operation: more than one element of the written-to tensor refers "
                           "to a single memory location (an expanded tensor). Call .clone() before writing.")
    put_into(self._data, packed, v._data, spec, dims, accumulate)
    self._version[0] += 1
    return self


def _setitem(self, key, value):
    spec, packed, dims = parse_key(tuple(self.shape), key)
    _put(self, spec, packed, dims, value, False, "__setitem__")


Tensor.__getitem__ = _getitem
Tensor.__setitem__ = _setitem


@export("index_put", inplace=True)
def index_put(input, indices, values, accumulate=False):
    """out = input.clone(); out[indices] = values (or += values with accumulate=True, repeated indices adding up)."""
    spec, packed, dims = parse_key(tuple(input.shape), tuple(indices))
    v = values if values.dtype is input.dtype else bind("cast", values, dtype=input.dtype)
    return bind("index_put", input, _index_tensor(packed, input), v, index=spec, dims=dims, accumulate=accumulate)


def _check_select_index(idx, size, d):
    """PyTorch's index_select error: no negative wrap-around, unlike x[idx]."""
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.size:
        raise IndexError(f"index out of range in self (index_select(): index {int(bad.flat[0])} is out of bounds for "
                         f"dimension {d} with size {size})")


@export("index_select", out=True)
def index_select(input, dim, index):
    """Rows (or columns, ...) of `input` at the int64 positions in the 1-d `index`."""
    if index.ndim > 1 or index.dtype.category != 1:
        raise IndexError(f"index_select(): Index is supposed to be a vector of integers, got {index.ndim}-d "
                         f"{index.dtype.name}")
    d = norm_dim("index_select", dim, input.ndim)
    x = input.reshape(1) if input.ndim == 0 else input
    _check_select_index(index._host(), x.shape[d], d)
    out = _getitem(x, (slice(None),) * d + (index if index.ndim == 1 else index.reshape(-1),))
    return out.reshape(()) if input.ndim == 0 and index.ndim == 0 else out


@export("gather", out=True)
def gather(input, dim, index, *, sparse_grad=False):
    """out[i][j] = input[index[i][j]][j] for dim=0 (and so on): picks one element per index along `dim`."""
    index = _int_index("gather", index)
    if input.ndim == 0:
        return bind("gather", input.reshape(1), index.reshape(1), dim=0).reshape(())
    return bind("gather", input, index, dim=dim)


@export("masked_select", out=True)
def masked_select(input, mask):
    """The elements where the (broadcast) bool mask is true, as a 1-d copy."""
    if mask.dtype is not dt.bool_:
        raise RuntimeError(f"masked_select: expected BoolTensor for mask, got {mask.dtype.name}")
    x, m = broadcast_tensors(input, mask)
    return _getitem(x, m)


def _int_index(opname, index):
    """An int32/int64 index tensor as int64 (the index ops take int64), with PyTorch's error for other dtypes."""
    if not isinstance(index, Tensor):
        raise TypeError(f"{opname}(): argument 'index' must be Tensor, not {type(index).__name__}")
    if index.dtype is dt.int64:
        return index
    if index.dtype is not dt.int32:
        raise RuntimeError(f"{opname}(): Expected dtype int32/int64 for index")
    return bind("cast", index, dtype=dt.int64)


def _scatter(opname, input, dim, index, src, reduce):
    """scatter with a tensor `src` or a Number `src` (a 0-d operand of input's dtype: PyTorch's `value`)."""
    if reduce not in REDUCES:
        raise RuntimeError("reduce argument must be either add or multiply.")
    index = _int_index(opname, index)
    if isinstance(src, Tensor):
        if src.ndim == 0 and index.ndim:
            raise RuntimeError("Index tensor must have the same number of dimensions as src tensor")
        if src.dtype is not input.dtype:  # checked here: the op promotes (its gradient rule passes a Python 0.0)
            raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
    else:
        src = Tensor._scalar(src, input.dtype, input.device)
    if input.ndim == 0:
        one = (1,) if index.ndim == 0 else tuple(index.shape)
        out = _scatter(opname, input.reshape(1), dim, index.reshape(one), src.reshape(1) if src.ndim == 0 and
                       index.ndim == 0 else src, reduce)
        return out.reshape(())
    return bind("scatter", input, index, src, dim=dim, reduce=reduce)


@export("scatter", inplace=True)
def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """out = input.clone(); out[index[i][j]][j] = src[i][j] for dim=0 (and so on); `src` may be a Number (value)."""
    if (src is None) == (value is None):
        raise TypeError("scatter() received an invalid combination of arguments: pass exactly one of src (a Tensor) "
                        "or value (a Number)")
    return _scatter("scatter", input, dim, index, value if src is None else src, reduce)


@export("scatter_add", inplace=True)
def scatter_add(input, dim, index, src):
    """out = input.clone(); out[index[i][j]][j] += src[i][j] for dim=0 (repeated indices add up)."""
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add(): argument 'src' (position 3) must be Tensor, not {type(src).__name__}")
    return _scatter("scatter_add", input, dim, index, src, "add")


@export("index_add", inplace=True)
def index_add(input, dim, index, source, *, alpha=1):
    """out = input.clone(); out.select(dim, index[i]) += alpha * source.select(dim, i) (repeats add up)."""
    if index.dtype.category != 1:
        raise RuntimeError("index_add_(): Expected dtype int32/int64 for index but got: "
                           f"{index.dtype.legacy_name[:-6]}")
    if index.ndim > 1:
        raise IndexError(f"index_add_(): Index is supposed to be a vector, but got dim: {index.ndim} with type: "
                         f"{index.dtype.legacy_name[:-6]} and size: {list(index.shape)}")
    index = _int_index("index_add_", index)
    if source.dtype is not input.dtype:
        raise RuntimeError(f"index_add_(): self ({input.dtype.legacy_name[:-6]}) and source "
                           f"({source.dtype.legacy_name[:-6]}) must have the same scalar type")
    if input.ndim == 0:
        return index_add(input.reshape(1), 0 if dim in (0, -1) else dim, index.reshape(-1), source.reshape(-1),
                         alpha=alpha).reshape(())
    return bind("index_add", input, index, source, dim=dim, alpha=alpha)
