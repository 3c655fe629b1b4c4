"""Movement primitives: reshape, permute, expand (views where NumPy can), cat, pad, flip, and their gradients."""
import numpy as np

from ...core.bind import op
from ...core.opdef import OpDef, OpError, register
from .util import fmt_shape, norm_dim, norm_dims


def _reshape_infer(t, shape):
    n = t.numel
    total = 1
    for s in shape:
        total *= s
    if total != n or any(s < 0 for s in shape):
        raise OpError(f"reshape: shape '{list(shape)}' is invalid for input of size {n} (input shape "
                      f"{fmt_shape(t.shape)})")
    return t.with_(shape=shape)


register(OpDef("reshape", "movement", _reshape_infer, lambda x, shape: np.reshape(x, shape),
               lambda c, g: (op.reshape(g, shape=c.in_types[0].shape),), is_view=True))


def _permute_infer(t, dims):
    if sorted(dims) != list(range(t.ndim)):
        raise OpError(f"permute: dims {list(dims)} are not a permutation of the {t.ndim} dims of a tensor of shape "
                      f"{fmt_shape(t.shape)}")
    return t.with_(shape=tuple(t.shape[d] for d in dims))


register(OpDef("permute", "movement", _permute_infer, lambda x, dims: np.transpose(x, dims),
               lambda c, g: (op.permute(g, dims=tuple(np.argsort(c.attrs["dims"]).tolist())),), is_view=True))


def _expand_infer(t, shape):
    if len(shape) < t.ndim:
        raise OpError(f"expand: the number of sizes provided ({len(shape)}) must be greater or equal to the number "
                      f"of dimensions in the tensor ({t.ndim})")
    lead = len(shape) - t.ndim
    for i, (have, want) in enumerate(zip(t.shape, shape[lead:])):
        if have != want and have != 1:
            raise OpError(f"expand: The expanded size of the tensor ({want}) must match the existing size ({have}) "
                          f"at non-singleton dimension {i + lead}.  Target sizes: {list(shape)}.  Tensor sizes: "
                          f"{list(t.shape)}")
    return t.with_(shape=shape)


register(OpDef("expand", "movement", _expand_infer, lambda x, shape: np.broadcast_to(x, shape),
               lambda c, g: (op.sum_to(g, shape=c.in_types[0].shape),), is_view=True))


FULL = ("slice", None, None, None)


def _slice_along(dim, start, stop):
    """A basic `getitem` index spec selecting start:stop along `dim`."""
    return (FULL,) * dim + (("slice", start, stop, 1),)


def _cat_infer(*types, dim):
    if not types:
        raise OpError("cat(): expected a non-empty list of Tensors")
    first = types[0]
    d = norm_dim("cat", dim, first.ndim)
    for i, t in enumerate(types[1:], 1):
        if t.ndim != first.ndim:
            raise OpError(f"cat(): Tensors must have same number of dimensions: got {first.ndim} and {t.ndim} "
                          f"(tensor number {i} in the list has shape {fmt_shape(t.shape)})")
        if t.dtype is not first.dtype:
            raise OpError(f"cat(): expected all tensors to have dtype {first.dtype.name}, tensor number {i} has "
                          f"{t.dtype.name}; cast them first")
        for k, (a, b) in enumerate(zip(first.shape, t.shape)):
            if k != d and a != b:
                raise OpError(f"cat(): Sizes of tensors must match except in dimension {d}. Expected size {a} but "
                              f"got size {b} for tensor number {i} in the list.")
    if first.ndim == 0:
        raise OpError("cat(): zero-dimensional tensor (at position 0) cannot be concatenated")
    shape = list(first.shape)
    shape[d] = sum(t.shape[d] for t in types)
    return first.with_(shape=tuple(shape))


def _cat_grad(c, g):
    d = norm_dim("cat", c.attrs["dim"], c.in_types[0].ndim)
    grads, start = [], 0
    for t, need in zip(c.in_types, c.needs_input_grad):
        stop = start + t.shape[d]
        grads.append(op.getitem(g, index=_slice_along(d, start, stop)) if need else None)
        start = stop
    return tuple(grads)


register(OpDef("cat", "movement", _cat_infer,
               lambda *xs, dim: np.concatenate(xs, axis=norm_dim("cat", dim, xs[0].ndim)), _cat_grad, kernel="cat"))


def _pad_widths(opname, t, pad):
    """PyTorch's pad tuple (last dim first: left, right, then the dim before) as per-dim (before, after) pairs."""
    if len(pad) % 2 or len(pad) // 2 > t.ndim:
        raise OpError(f"{opname}: Padding length must be divisible by 2 and at most twice the number of dimensions "
                      f"of the input (pad={tuple(pad)}, input shape {fmt_shape(t.shape)})")
    if any(p < 0 for p in pad):
        raise OpError(f"{opname}: negative padding is not supported (pad={tuple(pad)}); slice the tensor instead")
    widths = [(0, 0)] * t.ndim
    for k in range(len(pad) // 2):
        widths[t.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return widths


def _pad_infer(t, pad, value=0):
    widths = _pad_widths("pad", t, pad)
    return t.with_(shape=tuple(s + a + b for s, (a, b) in zip(t.shape, widths)))


def _pad_impl(x, pad, value=0):
    return np.pad(x, _pad_widths("pad", x, pad), constant_values=np.asarray(value).astype(x.dtype))


def _pad_grad(c, g):
    t = c.in_types[0]
    widths = _pad_widths("pad", t, c.attrs["pad"])
    return (op.getitem(g, index=tuple(("slice", a, a + s, 1) for s, (a, _) in zip(t.shape, widths))),)


register(OpDef("pad", "movement", _pad_infer, _pad_impl, _pad_grad))


def _flip_infer(t, dims):
    norm_dims("flip", dims, t.ndim)
    return t


register(OpDef("flip", "movement", _flip_infer,
               lambda x, dims: np.flip(x, norm_dims("flip", dims, x.ndim)).copy(),
               lambda c, g: (op.flip(g, dims=c.attrs["dims"]),)))
