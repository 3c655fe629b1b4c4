"""Shape functions: view/reshape, permute/transpose, expand, squeeze/unsqueeze, flatten, contiguous, and joining /
splitting: cat, stack, split, chunk, unbind, narrow, flip, roll, repeat, repeat_interleave, unflatten, pad; and the
triangles tril/triu."""
import numpy as np

from ..core import dtype as dt
from ..core.bind import bind
from ..core.device import CPU
from ..ir.ops.util import broadcast_shapes as _broadcast
from ..ir.ops.util import norm_dim
from .api import export
from .creation import arange
from .tensor import Size, Tensor


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
        return tuple(numel // known if s == -1 else s for s in shape)
    if known != numel:
        raise RuntimeError(f"{opname}: shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


@export("reshape")
def reshape(input, *shape):
    return bind("reshape", input, shape=infer_size("reshape", _size_args(shape), input.numel()))


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
    return bind("reshape", self, shape=shape)


@export("view_as", function=False)
def view_as(self, other):
    return view(self, tuple(other.shape))


@export("reshape_as", function=False)
def reshape_as(self, other):
    return reshape(self, tuple(other.shape))


@export("permute")
def permute(input, *dims):
    dims = _size_args(dims)
    return bind("permute", input, dims=tuple(norm_dim("permute", d, input.ndim) for d in dims))


@export("transpose", "swapaxes")
def transpose(input, dim0, dim1):
    a, b = norm_dim("transpose", dim0, input.ndim), norm_dim("transpose", dim1, input.ndim)
    if input.ndim < 2:  # a 0-d tensor accepts dims 0 and -1 too
        return input
    dims = list(range(input.ndim))
    dims[a], dims[b] = dims[b], dims[a]
    return bind("permute", input, dims=tuple(dims))


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
    return bind("expand", self, shape=shape)


@export("expand_as", function=False)
def expand_as(self, other):
    return bind("expand", self, shape=tuple(other.shape))


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
    return bind("reshape", input, shape=shape)


@export("unsqueeze")
def unsqueeze(input, dim):
    d = norm_dim("unsqueeze", dim, input.ndim + 1)
    shape = list(input.shape)
    shape.insert(d, 1)
    return bind("reshape", input, shape=tuple(shape))


@export("flatten")
def flatten(input, start_dim=0, end_dim=-1):
    if input.ndim == 0:
        return reshape(input, 1)
    s, e = norm_dim("flatten", start_dim, input.ndim), norm_dim("flatten", end_dim, input.ndim)
    shape = tuple(input.shape[:s]) + (int(np.prod(input.shape[s:e + 1])),) + tuple(input.shape[e + 1:])
    return bind("reshape", input, shape=shape)


@export("contiguous", function=False)
def contiguous(self):
    return self if self.is_contiguous() else bind("copy", self)


Tensor.is_contiguous = lambda self: (self._proxy is not None or self._device.type != "cpu"
                                     or bool(self._data.flags.c_contiguous))


@export("broadcast_shapes", method=False)
def broadcast_shapes(*shapes):
    """The shape all `shapes` broadcast to, as torch.broadcast_shapes (ints count as 1-d shapes)."""
    return Size(_broadcast("broadcast_shapes", *((s,) if isinstance(s, int) else tuple(s) for s in shapes)))


@export("broadcast_tensors", method=False)
def broadcast_tensors(*tensors):
    shape = tuple(broadcast_shapes(*(t.shape for t in tensors)))
    return tuple(t if tuple(t.shape) == shape else bind("expand", t, shape=shape) for t in tensors)


def _tensor_list(opname, tensors):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{opname}(): argument 'tensors' must be a tuple or list of Tensors, not "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise RuntimeError(f"{opname}(): expected a non-empty list of Tensors")
    return list(tensors)


@export("cat", "concat", "concatenate", method=False, out=True)
def cat(tensors, dim=0, *, axis=None):
    """Join tensors along an existing dim; dtypes promote as PyTorch's, legacy empty 1-d tensors are skipped."""
    tensors = _tensor_list("cat", tensors)
    common = dt.result_type(*tensors)
    kept = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    kept = [t if t.dtype is common else bind("cast", t, dtype=common) for t in kept]
    return bind("cat", *kept, dim=dim if axis is None else axis)


@export("stack", method=False, out=True)
def stack(tensors, dim=0):
    """Join same-shape tensors along a new dim."""
    tensors = _tensor_list("stack", tensors)
    for i, t in enumerate(tensors[1:], 1):
        if tuple(t.shape) != tuple(tensors[0].shape):
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(tensors[0].shape)} at "
                               f"entry 0 and {list(t.shape)} at entry {i}")
    d = norm_dim("stack", dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, d) for t in tensors], d)


def _along(input, dim, start, stop):
    """input[..., start:stop, ...] along `dim`, as a view sharing storage."""
    return bind("getitem", input, index=(("slice", None, None, None),) * dim + (("slice", start, stop, 1),))


@export("narrow")
def narrow(input, dim, start, length):
    d = norm_dim("narrow", dim, input.ndim)
    size = input.shape[d]
    start = int(start) + (size if int(start) < 0 else 0)
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise RuntimeError(f"narrow(): start ({start}) + length ({length}) exceeds dimension size ({size}) of a "
                           f"tensor of shape {tuple(input.shape)}")
    return _along(input, d, start, start + length)


@export("split")
def split(tensor, split_size_or_sections, dim=0):
    """Views of consecutive pieces: equal pieces of `split_size` (the last may be smaller), or the listed sizes."""
    d = norm_dim("split", dim, tensor.ndim)
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size:
            raise RuntimeError(f"split(): split_size must be positive, got {step}")
        sizes = [min(step, size - s) for s in range(0, size, step)] if size else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != size or any(s < 0 for s in sizes):
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size "
                               f"at dimension {d}), but got split_sizes={sizes}")
    out, start = [], 0
    for s in sizes:
        out.append(_along(tensor, d, start, start + s))
        start += s
    return tuple(out)


@export("chunk")
def chunk(input, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    size = input.shape[norm_dim("chunk", dim, input.ndim)]
    return split(input, max(-(-size // chunks), 1), dim)


@export("unbind")
def unbind(input, dim=0):
    d = norm_dim("unbind", dim, input.ndim)
    full = (("slice", None, None, None),) * d
    return tuple(bind("getitem", input, index=full + (("int", i),)) for i in range(input.shape[d]))


@export("flip")
def flip(input, *dims):
    dims = _size_args(dims)
    return bind("flip", input, dims=tuple(norm_dim("flip", d, input.ndim) for d in dims))


@export("repeat", function=False)
def repeat(self, *sizes):
    """Tile the tensor: expand a size-1 dim in front of each dim, then merge the pairs (a copy, like PyTorch)."""
    reps = _size_args(sizes)
    if len(reps) < self.ndim:
        raise RuntimeError("repeat(): Number of dimensions of repeat dims can not be smaller than number of "
                           f"dimensions of tensor (repeats {list(reps)}, tensor shape {list(self.shape)})")
    shape = (1,) * (len(reps) - self.ndim) + tuple(self.shape)
    paired = tuple(v for s in shape for v in (1, s))
    big = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    x = bind("expand", bind("reshape", self, shape=paired), shape=big)
    return bind("reshape", bind("copy", x), shape=tuple(r * s for r, s in zip(reps, shape)))


@export("tile")
def tile(input, dims):
    dims = tuple(dims)
    return repeat(input, *((1,) * (input.ndim - len(dims)) + dims))


def _constant_pad(input, widths, value):
    v = 0 if value is None else value
    return bind("pad", input, pad=tuple(int(p) for p in widths), value=v if input.dtype.is_floating_point else int(v))


@export("constant_pad_nd", method=False)
def constant_pad_nd(input, pad, value=0):
    return _constant_pad(input, pad, value)


def pad(input, pad, mode="constant", value=None):
    """nn.functional.pad for mode='constant' (the pad tuple lists the last dim first, left then right)."""
    if mode != "constant":
        raise NotImplementedError(f"pad(): mode={mode!r} is not supported yet; only 'constant' is")
    return _constant_pad(input, pad, value)


def _triangle(name, input, diagonal, lower):
    """input where column - row <= diagonal (lower) or >= diagonal (upper), else 0: a `where` against a mask of
    arange comparisons, so it fuses, runs on every device and its gradient is the same mask."""
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
    n, m = input.shape[-2:]
    offset = bind("sub", arange(m, device=input.device), bind("reshape", arange(n, device=input.device), shape=(n, 1)))
    keep = bind("le" if lower else "ge", offset, int(diagonal))
    return bind("where", keep, input, False if input.dtype is dt.bool_ else 0)


@export("tril", inplace=True, out=True)
def tril(input, diagonal=0):
    return _triangle("tril", input, diagonal, lower=True)


@export("triu", inplace=True, out=True)
def triu(input, diagonal=0):
    return _triangle("triu", input, diagonal, lower=False)


@export("unflatten")
def unflatten(input, dim, sizes):
    """Split dim `dim` into `sizes` (one entry may be -1), a view: the inverse of flatten."""
    if input.ndim == 0:
        raise IndexError(f"unflatten: Dimension specified as {dim} but tensor has no dimensions")
    d = norm_dim("unflatten", dim, input.ndim)
    sizes = tuple(int(s) for s in sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    if sizes.count(-1) > 1:
        raise RuntimeError("unflatten: only one dimension can be inferred")
    size, known = input.shape[d], int(np.prod([s for s in sizes if s != -1]))
    if (-1 in sizes and (known == 0 or size % known)) or (-1 not in sizes and known != size):
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {d} ({size}) "
                           "in the input tensor")
    sizes = tuple(size // known if s == -1 else s for s in sizes)
    return bind("reshape", input, shape=tuple(input.shape[:d]) + sizes + tuple(input.shape[d + 1:]))


@export("roll")
def roll(input, shifts, dims=None):
    """Rotate elements along `dims` by `shifts` (dims=None: over the flattened tensor), as two slices and a cat."""
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return reshape(roll(flatten(input), shifts, 0), *input.shape)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    out = input
    for s, dim in zip(shifts, dims):
        d = norm_dim("roll", dim, input.ndim)
        size = input.shape[d] if input.ndim else 1
        s = s % size if size else 0
        if s:
            out = cat([_along(out, d, size - s, size), _along(out, d, 0, size - s)], d)
    return out if out is not input else bind("copy", input)


@export("repeat_interleave")
def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Repeat each element (each slice along `dim`; dim=None flattens) `repeats` times: an int or a 1-d tensor.
    `repeat_interleave(repeats)` alone gives indices repeated by the counts in `repeats`, as in PyTorch."""
    if repeats is None:
        return repeat_interleave(Tensor._wrap(np.arange(input.shape[0] if input.ndim else 1), dt.int64, CPU).to(
            input.device), input, 0, output_size=output_size)
    x = flatten(input) if dim is None else input
    d = 0 if dim is None else norm_dim("repeat_interleave", dim, x.ndim)
    x = reshape(x, 1) if x.ndim == 0 else x
    counts = _repeat_counts(repeats, x.shape[d], d)
    total = int(counts.sum()) if isinstance(counts, np.ndarray) else counts * x.shape[d]
    if output_size is not None and output_size != total:
        if isinstance(counts, np.ndarray):
            raise RuntimeError("allocated size does not match required size")
        raise RuntimeError(f"repeat_interleave: Invalid output_size, expected {total} but got {output_size}")
    if isinstance(counts, np.ndarray):
        picks = Tensor._wrap(np.repeat(np.arange(x.shape[d]), counts), dt.int64, CPU).to(x.device)
        return x.index_select(d, picks)
    shape = tuple(x.shape)
    wide = expand(unsqueeze(x, d + 1), *(shape[:d + 1] + (counts,) + shape[d + 1:]))
    return reshape(bind("copy", wide), *(shape[:d] + (total,) + shape[d + 1:]))


def _repeat_counts(repeats, size, d):
    """An int count for every slice, or a NumPy array of per-slice counts (read on the host), with PyTorch's errors."""
    if isinstance(repeats, Tensor):
        if repeats.ndim > 1:
            raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
        if repeats.dtype.category != 1:
            raise NotImplementedError(f"\"repeat_interleave_cpu\" not implemented for "
                                      f"'{repeats.dtype.legacy_name[:-6]}'")
        counts = repeats._host().reshape(-1)
        if counts.size != 1:
            if counts.size != size:
                raise RuntimeError(f"repeats must have the same size as input along dim, but got repeats.size(0) = "
                                   f"{counts.size} and input.size({d}) = {size}")
            if (counts < 0).any():
                raise RuntimeError("repeats can not be negative")
            return counts.astype(np.int64)
        repeats = int(counts[0])
    if repeats < 0:
        raise RuntimeError("Repeats must be non-negative")
    return int(repeats)
