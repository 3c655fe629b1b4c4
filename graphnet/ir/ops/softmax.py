"""log_softmax as one primitive: a single stable pass per slice, and one library kernel in compiled programs. Its
gradient is written with ops: g - exp(out) * sum(g). Cross-entropy over class indices has its own pair of primitives
(loss rows, and their gradient), each one pass over the (N, C) logits and one library kernel."""
import numpy as np

from ...core import dtype as dt
from ...core.bind import op
from ...core.opdef import OpDef, OpError, register
from .util import fmt_shape, norm_dim


def _infer(t, dim):
    if not t.dtype.is_floating_point:
        raise OpError(f"log_softmax: expected a floating-point tensor, got {t.dtype.name}")
    if t.ndim == 0:
        raise OpError("log_softmax: expected a tensor with at least 1 dim (the frontend reshapes 0-d inputs)")
    norm_dim("log_softmax", dim, t.ndim)
    return t


def _impl(x, dim):
    """x - max - log(sum(exp(x - max))), the max taken as 0 when it is -inf (an all -inf slice gives NaN, as in
    PyTorch, instead of a warning from inf - inf); a +inf max makes the slice NaN, as PyTorch's does."""
    if x.shape[dim] == 0:
        return x.copy()
    m = np.max(x, axis=dim, keepdims=True)
    m = np.where(np.isneginf(m), np.zeros_like(m), m)
    with np.errstate(all="ignore"):
        shifted = x - m
        return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


def _grad(c, g):
    out, dim = c.outputs[0], c.attrs["dim"]
    return (op.sub(g, op.mul(op.exp(out), op.sum(g, dims=(dim,), keepdim=True))),)


register(OpDef("log_softmax", "opaque", _infer, _impl, _grad, save_outputs=(0,), kernel="log_softmax"))


# ---- cross-entropy over class indices: one pass per row forward, one pass per row backward ---------------------
def _check_rows(name, x, target):
    """(N, C) floating logits with C >= 1 and (N,) int64 class indices."""
    if not x.dtype.is_floating_point:
        raise OpError(f"{name}: expected floating-point logits, got {x.dtype.name}")
    if x.ndim != 2 or x.shape[1] == 0:
        raise OpError(f"{name}: expected logits of shape (N, C) with C >= 1, got {fmt_shape(x.shape)} (the frontend "
                      "reshapes (C,) inputs to (1, C))")
    if target.dtype is not dt.int64 or tuple(target.shape) != (x.shape[0],):
        raise OpError(f"{name}: expected int64 class indices of shape ({x.shape[0]},) for logits "
                      f"{fmt_shape(x.shape)}, got {target.dtype.name} of shape {fmt_shape(target.shape)}")


def _ce_infer(x, target, ignore_index):
    _check_rows("cross_entropy_rows", x, target)
    return x.with_(shape=(x.shape[0],))


def _ce_backward_infer(g, x, target, ignore_index):
    _check_rows("cross_entropy_rows_backward", x, target)
    if tuple(g.shape) != (x.shape[0],) or g.dtype is not x.dtype:
        raise OpError(f"cross_entropy_rows_backward: grad_output must be {x.dtype.name} of shape ({x.shape[0]},), "
                      f"got {g.dtype.name} of shape {fmt_shape(g.shape)}")
    return x


def one_hot_error(target, num_classes):
    """one_hot's eager error (PyTorch's wording) for class indices outside [0, num_classes), or None."""
    if target.min() < 0:
        return RuntimeError("Class values must be non-negative.")
    if target.max() >= num_classes:
        return RuntimeError(f"Class values must be smaller than num_classes (got class {int(target.max())}, "
                            f"num_classes {num_classes}).")
    return None


def check_targets(target, n_classes, ignore_index, name):
    """Raise the eager error of function `name` for the first target that is neither a class in [0, n_classes) nor
    ignore_index: a loss's IndexError ("Target 7 is out of bounds.", as PyTorch), or one_hot's RuntimeError. A
    min/max pass first: this runs before every compiled step that takes labels."""
    if not target.size or (target.min() >= 0 and target.max() < n_classes):
        return
    bad = target[(target != ignore_index) & ((target < 0) | (target >= n_classes))]
    if bad.size and name == "one_hot":
        raise one_hot_error(target, n_classes)
    if bad.size:
        raise IndexError(f"Target {int(bad.flat[0])} is out of bounds. ({name}: input has {n_classes} classes, so "
                         f"targets must be in [0, {n_classes - 1}] or equal ignore_index={ignore_index})")


def _kept_targets(target, n_classes, ignore_index):
    """(rows that count, their targets with ignored ones replaced by 0); an out-of-range target raises."""
    check_targets(target, n_classes, ignore_index, "cross_entropy")
    kept = target != ignore_index
    return kept, np.where(kept, target, 0)


def _ce_impl(x, target, ignore_index):
    """logsumexp(x[i]) - x[i, t[i]] per row, 0 for ignored rows."""
    kept, safe = _kept_targets(target, x.shape[1], ignore_index)
    picked = _impl(x, 1)[np.arange(x.shape[0]), safe]
    return np.where(kept, -picked, x.dtype.type(0))


def _ce_backward_impl(g, x, target, ignore_index):
    """(softmax(x[i]) - onehot(t[i])) * g[i] per row, zero rows for ignored targets."""
    kept, safe = _kept_targets(target, x.shape[1], ignore_index)
    with np.errstate(all="ignore"):
        d = np.exp(_impl(x, 1))
        d[np.arange(x.shape[0]), safe] -= 1
        d *= g[:, None]
    return np.where(kept[:, None], d, x.dtype.type(0))


def _ce_grad(c, g):
    if not c.needs_input_grad[0]:
        return None, None
    x, target = c.inputs
    return op.cross_entropy_rows_backward(g, x, target, ignore_index=c.attrs["ignore_index"]), None


def _ce_backward_grad(c, gg):
    """Written with ops: d/dg = sum_j gg * (p - onehot) (the op itself with g = the kept-row mask), and
    d/dx = g * p * (gg - sum_j gg * p), the softmax Jacobian applied to gg, zero on ignored rows."""
    g, x, target = c.inputs
    ignore_index = c.attrs["ignore_index"]
    kept = op.cast(op.ne(target, ignore_index), dtype=c.in_types[1].dtype)
    dg = dx = None
    if c.needs_input_grad[0]:
        delta = op.cross_entropy_rows_backward(kept, x, target, ignore_index=ignore_index)
        dg = op.sum(op.mul(gg, delta), dims=(1,))
    if c.needs_input_grad[1]:
        p = op.exp(op.log_softmax(x, dim=1))
        centred = op.sub(gg, op.sum(op.mul(gg, p), dims=(1,), keepdim=True))
        scale = op.reshape(op.mul(g, kept), shape=(c.in_types[1].shape[0], 1))
        dx = op.mul(op.mul(p, centred), scale)
    return dg, dx, None


register(OpDef("cross_entropy_rows", "opaque", _ce_infer, _ce_impl, _ce_grad, save_inputs=(0, 1),
               kernel="cross_entropy_rows"))
register(OpDef("cross_entropy_rows_backward", "opaque", _ce_backward_infer, _ce_backward_impl, _ce_backward_grad,
               save_inputs=(0, 1, 2), kernel="cross_entropy_rows_backward"))


# ---- the class-index check a traced loss or one_hot records: the targets, unchanged, once known to be in range ---
def _check_infer(target, n_classes, ignore_index, loss):
    if target.dtype is not dt.int64:
        raise OpError(f"check_targets: expected int64 class indices, got {target.dtype.name}")
    return target


def _check_impl(target, n_classes, ignore_index, loss):
    check_targets(target, n_classes, ignore_index, loss)
    return target


def _check_bounds(target, in_shapes, n_classes, ignore_index, loss):
    check_targets(target, n_classes, ignore_index, loss)


register(OpDef("check_targets", "opaque", _check_infer, _check_impl, lambda c, g: (None,), kernel="check_targets",
               bounds=(0, _check_bounds)))
