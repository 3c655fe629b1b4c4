"""Indexing primitives: basic getitem (a view), advanced index / index_put, gather, and their scatter-add adjoints.

A basic index spec is a tuple of hashable items: ("int", i), ("slice", start, stop, step), ("none",), ("ellipsis",).
Advanced (tensor) indices travel as one int64 input of shape (k, *B): row j indexes dim `dims[j]` of the tensor that
the basic spec selects (so integers are applied first, as PyTorch does, and NumPy's placement rule does the rest).
"""
import numpy as np

from ...core import dtype as dt
from ...core.bind import op
from ...core.opdef import OpDef, OpError, register
from .util import fmt_shape, norm_dim, unbroadcast

_FULL = slice(None)


def _consumed(spec):
    return sum(1 for item in spec if item[0] in ("int", "slice"))


def basic_index(shape, spec):
    """Validate a basic spec against `shape`; return (NumPy index tuple, result shape). The NumPy index ends in
    `...`, so that even an all-integer index yields a 0-d view rather than a scalar copy."""
    ndim = len(shape)
    if _consumed(spec) > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    if sum(1 for item in spec if item[0] == "ellipsis") > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    index, out, d = [], [], 0
    for item in spec:
        kind = item[0]
        if kind == "ellipsis":
            n = ndim - _consumed(spec)
            index.extend([_FULL] * n)
            out.extend(shape[d:d + n])
            d += n
        elif kind == "none":
            index.append(None)
            out.append(1)
        elif kind == "int":
            i = item[1]
            if not -shape[d] <= i < shape[d]:
                raise IndexError(f"index {i} is out of bounds for dimension {d} with size {shape[d]}")
            index.append(i)
            d += 1
        else:
            if item[3] is not None and item[3] <= 0:
                raise ValueError(f"step must be greater than zero (got slice step {item[3]}); use flip() to reverse")
            sl = slice(*item[1:])
            index.append(sl)
            out.append(len(range(*sl.indices(shape[d]))))
            d += 1
    return tuple(index) + (Ellipsis,), tuple(out) + tuple(shape[d:])


def _advanced_shape(base, idx_shape, dims):
    """NumPy's rule: adjacent advanced dims are replaced in place by the index shape, otherwise it goes first."""
    if not idx_shape or idx_shape[0] != len(dims):
        raise OpError(f"index: {len(dims)} indexed dims but the index tensor has shape {fmt_shape(idx_shape)}")
    if not dims:
        return base
    bshape = tuple(idx_shape[1:])
    rest = tuple(s for i, s in enumerate(base) if i not in dims)
    if list(dims) == list(range(dims[0], dims[0] + len(dims))):
        return rest[:dims[0]] + bshape + rest[dims[0]:]
    return bshape + rest


def advanced_index(ndim, idx, dims):
    """The NumPy index placing row j of `idx` at dim dims[j] (full slices elsewhere)."""
    full = [_FULL] * ndim
    for j, d in enumerate(dims):
        full[d] = idx[j]
    return tuple(full)


def _check_index_dtype(name, t):
    if t.dtype is not dt.int64:
        raise OpError(f"{name}: expected an int64 index tensor, got {t.dtype.name}")


# ---- basic indexing: a view -----------------------------------------------------------------------------------
def _getitem_infer(t, index):
    return t.with_(shape=basic_index(t.shape, index)[1])


def _getitem_backward_infer(g, shape, index):
    return g.with_(shape=tuple(shape))


def _getitem_backward_impl(g, shape, index):
    z = np.zeros(shape, g.dtype)
    z[basic_index(shape, index)[0]] = g
    return z


register(OpDef("getitem", "movement", _getitem_infer, lambda x, index: x[basic_index(x.shape, index)[0]],
               lambda c, g: (op.getitem_backward(g, shape=c.in_types[0].shape, index=c.attrs["index"]),),
               is_view=True))
register(OpDef("getitem_backward", "movement", _getitem_backward_infer, _getitem_backward_impl,
               lambda c, g: (op.getitem(g, index=c.attrs["index"]),), kernel="slice_adjoint"))


# ---- advanced indexing: copies, scatter-add adjoint ------------------------------------------------------------
def _index_infer(t, idx, index, dims):
    _check_index_dtype("index", idx)
    return t.with_(shape=_advanced_shape(basic_index(t.shape, index)[1], idx.shape, dims))


def _index_impl(x, idx, index, dims):
    view = x[basic_index(x.shape, index)[0]]
    return view[advanced_index(view.ndim, idx, dims)] if dims else view.copy()


def _index_backward_infer(g, idx, shape, index, dims):
    return g.with_(shape=tuple(shape))


def _index_backward_impl(g, idx, shape, index, dims):
    """Scatter-add into zeros: repeated indices accumulate (np.add.at), as the adjoint of a gather must."""
    z = np.zeros(shape, g.dtype)
    view = z[basic_index(shape, index)[0]]
    if dims:
        np.add.at(view, advanced_index(view.ndim, idx, dims), g)
    else:
        view += g
    return z


def _index_attrs(c):
    return {"index": c.attrs["index"], "dims": c.attrs["dims"]}


register(OpDef("index", "movement", _index_infer, _index_impl,
               lambda c, g: (op.index_backward(g, c.inputs[1], shape=c.in_types[0].shape, **_index_attrs(c)), None),
               save_inputs=(1,)))
register(OpDef("index_backward", "movement", _index_backward_infer, _index_backward_impl,
               lambda c, g: (op.index(g, c.inputs[1], **_index_attrs(c)), None), save_inputs=(1,)))


def _index_put_infer(x, idx, v, index, dims, accumulate=False):
    _check_index_dtype("index_put", idx)
    target = _advanced_shape(basic_index(x.shape, index)[1], idx.shape, dims)
    tail = tuple(target[len(target) - len(v.shape):]) if v.shape else ()
    if len(v.shape) > len(target) or any(a not in (1, b) for a, b in zip(v.shape, tail)):
        raise OpError(f"shape mismatch: value tensor of shape {list(v.shape)} cannot be broadcast to indexing "
                      f"result of shape {list(target)}")
    return x


def put_into(out, idx, v, index, dims, accumulate=False):
    """out[index][idx] = v in place (or += v, with repeated indices adding up)."""
    view = out[basic_index(out.shape, index)[0]]
    adv = advanced_index(view.ndim, idx, dims)
    if accumulate and dims:
        np.add.at(view, adv, v)
    elif accumulate:
        view += v
    else:
        view[adv] = v


def _index_put_impl(x, idx, v, index, dims, accumulate=False):
    out = x.copy()
    put_into(out, idx, v, index, dims, accumulate)
    return out


def _index_put_grad(c, g):
    attrs = _index_attrs(c)
    gx = gv = None
    if c.needs_input_grad[0]:
        gx = g if c.attrs.get("accumulate") else op.index_put(g, c.inputs[1], 0.0, **attrs)
    if c.needs_input_grad[2]:
        gv = unbroadcast(op.index(g, c.inputs[1], **attrs), c.in_types[2].shape)
    return gx, None, gv


register(OpDef("index_put", "movement", _index_put_infer, _index_put_impl, _index_put_grad, save_inputs=(1,),
               promote=(0, 2)))


# ---- gather along one dim (torch.gather) -----------------------------------------------------------------------
def _gather_infer(t, idx, dim):
    _check_index_dtype("gather", idx)
    d = norm_dim("gather", dim, t.ndim)
    if idx.ndim != t.ndim:
        raise OpError(f"gather(): Index tensor must have the same number of dimensions as input tensor (index shape "
                      f"{fmt_shape(idx.shape)}, input shape {fmt_shape(t.shape)})")
    for k, (a, b) in enumerate(zip(idx.shape, t.shape)):
        if k != d and a > b:
            raise OpError(f"gather(): Size does not match at dimension {k} expected index {list(idx.shape)} to be "
                          f"smaller than self {list(t.shape)} apart from dimension {d}")
    return t.with_(shape=idx.shape)


def check_index_along(idx, shape, dim, prefix=""):
    """Raise the eager error for the first entry of `idx` outside [0, size) along `dim` of a tensor of `shape`
    (gather, scatter and index_add take no negative index, unlike x[idx])."""
    d = norm_dim("index", dim, len(shape))
    if not idx.size or (idx.min() >= 0 and idx.max() < shape[d]):
        return
    bad = (idx < 0) | (idx >= shape[d])
    raise OpError(f"{prefix}index {int(idx[bad].flat[0])} is out of bounds for dimension {d} with size {shape[d]}")


def check_gather_index(idx, shape, dim):
    check_index_along(idx, shape, dim, "gather(): ")


def _gather_index(shape, idx, dim, check=True):
    """The full NumPy index for gather: `idx` along `dim`, broadcast aranges elsewhere."""
    if check:
        check_gather_index(idx, shape, dim)
    d = norm_dim("gather", dim, len(shape))
    return tuple(idx if k == d else np.arange(n).reshape((-1,) + (1,) * (idx.ndim - k - 1))
                 for k, n in enumerate(idx.shape))


def _gather_backward_impl(g, idx, shape, dim):
    z = np.zeros(shape, g.dtype)
    np.add.at(z, _gather_index(shape, idx, dim), g)
    return z


register(OpDef("gather", "movement", _gather_infer, lambda x, idx, dim: x[_gather_index(x.shape, idx, dim)],
               lambda c, g: (op.gather_backward(g, c.inputs[1], shape=c.in_types[0].shape, dim=c.attrs["dim"]),
                             None), save_inputs=(1,),
               bounds=(1, lambda idx, in_shapes, dim: check_gather_index(idx, in_shapes[0], dim))))
register(OpDef("gather_backward", "movement", lambda g, idx, shape, dim: g.with_(shape=tuple(shape)),
               _gather_backward_impl, lambda c, g: (op.gather(g, c.inputs[1], dim=c.attrs["dim"]), None),
               save_inputs=(1,), bounds=(1, lambda idx, in_shapes, shape, dim: check_gather_index(idx, shape, dim))))


# ---- embedding: rows of a (num_embeddings, dim) table picked by int64 ids, and the row scatter-add adjoint --------
def check_embedding_index(idx, in_shapes, **attrs):
    """PyTorch's embedding error for the first id outside [0, num_embeddings) (no negative wrap-around)."""
    n = in_shapes[0][0] if "num_weights" not in attrs else attrs["num_weights"]
    if not idx.size or (idx.min() >= 0 and idx.max() < n):
        return
    bad = int(idx[(idx < 0) | (idx >= n)].flat[0])
    raise IndexError(f"index out of range in self (embedding: id {bad} is not in [0, {n}) for a table of {n} rows)")


def _embedding_infer(w, idx, padding_idx=None):
    _check_index_dtype("embedding", idx)
    if w.ndim != 2:
        raise OpError(f"embedding: expected a 2-d weight (num_embeddings, embedding_dim), got {fmt_shape(w.shape)}")
    return w.with_(shape=tuple(idx.shape) + (w.shape[1],))


def _embedding_impl(w, idx, padding_idx=None):
    check_embedding_index(idx, [w.shape])
    return w[idx]


def _embedding_backward_impl(g, idx, num_weights):
    check_embedding_index(idx, None, num_weights=num_weights)
    z = np.zeros((num_weights, g.shape[-1]), g.dtype)
    np.add.at(z, idx.reshape(-1), g.reshape(-1, g.shape[-1]))
    return z


def _embedding_grad(c, g):
    """The row scatter-add of g; with padding_idx, the positions looking up that row send it nothing (a graph rule,
    so compiled modules' graph autodiff drops it too, which a detach in the frontend would not)."""
    pad = c.attrs.get("padding_idx")
    if pad is not None:
        keep = op.reshape(op.ne(c.inputs[1], pad), shape=tuple(c.in_types[1].shape) + (1,))
        g = op.where(keep, g, 0.0)
    return op.embedding_backward(g, c.inputs[1], num_weights=c.in_types[0].shape[0]), None


register(OpDef("embedding", "movement", _embedding_infer, _embedding_impl, _embedding_grad,
               save_inputs=(1,), kernel="embedding", bounds=(1, check_embedding_index)))
register(OpDef("embedding_backward", "movement",
               lambda g, idx, num_weights: g.with_(shape=(num_weights, g.shape[-1])), _embedding_backward_impl,
               lambda c, g: (op.embedding(g, c.inputs[1]), None), save_inputs=(1,), kernel="embedding_backward",
               bounds=(1, check_embedding_index)))


# ---- scatter along one dim (torch.scatter / scatter_add, reduce='add' / 'multiply') -------------------------------
REDUCES = (None, "add", "multiply")


def check_scatter_shapes(idx_shape, self_shape, src_shape, d):
    """PyTorch's size rule: index no larger than self apart from `d`, and no larger than src (None: a scalar value)."""
    small_self = all(a <= b for k, (a, b) in enumerate(zip(idx_shape, self_shape)) if k != d)
    small_src = src_shape is None or all(a <= b for a, b in zip(idx_shape, src_shape))
    if not (small_self and small_src):
        tail = "" if src_shape is None else f" and to be no larger size than src {list(src_shape)}"
        raise OpError(f"Expected index {list(idx_shape)} to be no larger than self {list(self_shape)} apart from "
                      f"dimension {d}{tail}")


def _scatter_infer(t, idx, src, dim, reduce=None):
    _check_index_dtype("scatter", idx)
    d = norm_dim("scatter", dim, t.ndim)
    if reduce not in REDUCES:
        raise OpError("reduce argument must be either add or multiply.")
    if idx.ndim != t.ndim:
        raise OpError("Index tensor must have the same number of dimensions as self tensor")
    if src.ndim and idx.ndim != src.ndim:
        raise OpError("Index tensor must have the same number of dimensions as src tensor")
    check_scatter_shapes(idx.shape, t.shape, src.shape if src.ndim else None, d)
    return t


def _scatter_impl(x, idx, src, dim, reduce=None):
    """out = x.copy(); out[..idx..] = src (a 0-d src is a scalar value), or += / *= with repeated indices adding up."""
    check_index_along(idx, x.shape, dim)
    out = x.copy()
    full = _gather_index(x.shape, idx, dim, check=False)
    part = src if src.ndim == 0 else src[tuple(slice(0, n) for n in idx.shape)]
    if reduce is None:
        out[full] = part
    else:
        (np.add if reduce == "add" else np.multiply).at(out, full, np.broadcast_to(part, idx.shape))
    return out


def _fit(t, shape):
    """Zero-pad `t` at the end of each dim up to `shape` (a src larger than the index gets no gradient there)."""
    widths = tuple(w for a, b in zip(reversed(t.shape), reversed(shape)) for w in (0, b - a))
    return t if not any(widths) else op.pad(t, pad=widths, value=0.0)


def _scatter_grad(c, g):
    dim, reduce = c.attrs["dim"], c.attrs.get("reduce")
    if reduce == "multiply":
        raise RuntimeError("derivative for aten::scatter is not implemented (reduce='multiply')")
    idx, src_type = c.inputs[1], c.in_types[2]
    gx = gs = None
    if c.needs_input_grad[0]:
        gx = g if reduce == "add" else op.scatter(g, idx, 0.0, dim=dim)
    if c.needs_input_grad[2] and src_type.ndim:
        gs = _fit(op.gather(g, idx, dim=dim), src_type.shape)
    return gx, None, gs


register(OpDef("scatter", "movement", _scatter_infer, _scatter_impl, _scatter_grad, save_inputs=(1,),
               promote=(0, 2),
               bounds=(1, lambda idx, in_shapes, dim, reduce=None: check_index_along(idx, in_shapes[0], dim))))


# ---- index_add along one dim ----------------------------------------------------------------------------------
def _index_add_infer(t, idx, src, dim, alpha=1):
    _check_index_dtype("index_add_()", idx)
    d = norm_dim("index_add_()", dim, t.ndim)
    if idx.ndim > 1:
        raise OpError(f"index_add_(): Index is supposed to be a vector, but got dim: {idx.ndim} with type: Long and "
                      f"size: {list(idx.shape)}")
    if src.ndim and d >= src.ndim:
        raise OpError(f"index_add_(): Indexing dim {d} is out of bounds of the source tensor with dim {src.ndim}")
    n = idx.shape[0] if idx.ndim else 1
    if src.ndim and n != src.shape[d]:
        raise OpError(f"index_add_(): Number of indices ({n}) should be equal to source.size(dim): "
                      f"({src.shape[d]}), for dim: {d}")
    if src.ndim != t.ndim or any(a != b for k, (a, b) in enumerate(zip(t.shape, src.shape)) if k != d):
        raise OpError("source tensor shape must match self tensor shape, excluding the specified dimension. Got "
                      f"self.shape = {list(t.shape)} source.shape = {list(src.shape)}")
    return t


def _index_add_impl(x, idx, src, dim, alpha=1):
    check_index_along(idx, x.shape, dim)
    d = norm_dim("index_add_()", dim, x.ndim)
    out = x.copy()
    np.add.at(out, (_FULL,) * d + (idx.reshape(-1),), src if alpha == 1 else (src * alpha).astype(x.dtype))
    return out


def _index_add_grad(c, g):
    d = norm_dim("index_add_()", c.attrs["dim"], len(c.in_types[0].shape))
    alpha = c.attrs.get("alpha", 1)
    gs = None
    if c.needs_input_grad[2]:
        rows = op.reshape(c.inputs[1], shape=(1, c.in_types[1].shape[0] if c.in_types[1].ndim else 1))
        gs = op.index(g, rows, index=(("slice", None, None, None),) * d, dims=(d,))
        gs = gs if alpha == 1 else op.mul(gs, alpha)
    return g, None, gs


register(OpDef("index_add", "movement", _index_add_infer, _index_add_impl, _index_add_grad, save_inputs=(1,),
               promote=(0, 2),
               bounds=(1, lambda idx, in_shapes, dim, alpha=1: check_index_along(idx, in_shapes[0], dim))))
