"""Movement primitives: reshape, permute, expand (views where NumPy can), and their gradient rules."""
import numpy as np

from .registry import OpDef, OpError, op, register
from .util import fmt_shape


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
