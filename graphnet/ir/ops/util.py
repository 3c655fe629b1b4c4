"""Shape helpers shared by the op rules: broadcasting, dim normalisation, and un-broadcasting of gradients."""
from ...core.bind import op
from ...core.opdef import OpError


def fmt_shape(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


_OPERAND_NAMES = {0: "a", 1: "b"}


def broadcast_shapes(opname, *shapes):
    """NumPy broadcasting, with PyTorch's message naming the op and both shapes on a mismatch."""
    first = shapes[0]
    for s in shapes:
        if s != first:
            break
    else:
        return tuple(first)
    ndim = max((len(s) for s in shapes), default=0)
    out, owner = [1] * ndim, [0] * ndim
    for idx, s in enumerate(shapes):
        for d, n in enumerate((1,) * (ndim - len(s)) + tuple(s)):
            if n != 1 and out[d] not in (1, n):
                a, b = (_OPERAND_NAMES.get(k, str(k)) for k in (owner[d], idx))
                raise OpError(f"{opname}: The size of tensor {a} ({out[d]}) must match the size of tensor {b} ({n}) "
                              f"at non-singleton dimension {d} (shapes {' and '.join(map(fmt_shape, shapes))})")
            if n != 1:
                out[d], owner[d] = n, idx
    return tuple(out)


def norm_dim(opname, dim, ndim):
    """Wrap a negative dim like PyTorch; a 0-d tensor accepts dims -1 and 0."""
    bound = max(ndim, 1)
    if not -bound <= dim < bound:
        raise IndexError(f"{opname}: Dimension out of range (expected to be in range of [{-bound}, {bound - 1}], "
                         f"but got {dim})")
    return dim % bound


def norm_dims(opname, dims, ndim):
    """None means all dims; an int or a sequence is normalised, sorted and de-duplicated."""
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int):
        dims = (dims,)
    out = [norm_dim(opname, d, ndim) for d in dims]
    repeated = next((d for i, d in enumerate(out) if d in out[:i]), None)
    if repeated is not None:
        raise OpError(f"dim {repeated} appears multiple times in the list of dims")
    return tuple(d for d in sorted(out) if d < ndim)


def unbroadcast(grad, shape):
    """Sum a broadcast gradient back to the operand's shape (identity when shapes already match)."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    return op.sum_to(grad, shape=tuple(shape))
