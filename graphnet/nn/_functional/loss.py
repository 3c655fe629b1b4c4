"""nn.functional losses, composed of graphnet ops (so they run eagerly, differentiate and trace alike)."""
import warnings

import numpy as np

from ...core import dtype as dt
from ...core.bind import bind
from ...frontend.tensor import Tensor
from ...ir.ops.softmax import check_targets
from .activation import softplus_stable


def legacy_reduction(size_average, reduce, reduction):
    """Map the deprecated size_average/reduce flags onto `reduction`, as PyTorch does."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else "mean" if size_average else "sum"


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_same_size(name, input, target):
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(f"{name}: Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to broadcasting. Please ensure "
                      "they have the same size.", stacklevel=3)


# ---- regression -------------------------------------------------------------------------------------------------
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    _check_same_size("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, legacy_reduction(size_average, reduce, reduction))


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    _check_same_size("l1_loss", input, target)
    return _reduce((input - target).abs(), legacy_reduction(size_average, reduce, reduction))


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (plain L1 when beta == 0)."""
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta (got {beta})")
    _check_same_size("smooth_l1_loss", input, target)
    d = (input - target).abs()
    loss = d if beta == 0 else bind("where", d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, legacy_reduction(size_average, reduce, reduction))


def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| < delta, delta * (|d| - 0.5 delta) elsewhere."""
    if delta <= 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta (got {delta})")
    _check_same_size("huber_loss", input, target)
    d = (input - target).abs()
    return _reduce(bind("where", d < delta, d * d * 0.5, (d - 0.5 * delta) * delta), reduction)


# ---- binary classification --------------------------------------------------------------------------------------
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)), each log clamped to >= -100 as PyTorch does; the input gradient is PyTorch's
    eps-guarded one (the clamped logs alone would give NaN or 0 at a saturated x = 0 or 1)."""
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}) "
                         "is deprecated. Please ensure they have the same size.")
    if input._proxy is None and input.numel() and (input._host().min() < 0 or input._host().max() > 1):
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1 (apply sigmoid "
                           "first, or use binary_cross_entropy_with_logits on the raw scores)")
    x = input.detach()
    loss = -(target * x.log().clamp(min=-100.0) + (1.0 - target) * (1.0 - x).log().clamp(min=-100.0))
    if input.requires_grad:  # PyTorch's input gradient, finite at x = 0 or 1: (x - t) / max(x (1 - x), 1e-12)
        slope = ((x - target) / (x * (1.0 - x)).clamp(min=1e-12)).detach()
        loss = loss + slope * (input - x)
    loss = loss if weight is None else loss * weight
    return _reduce(loss, legacy_reduction(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """sigmoid + BCE in one stable formula: (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)."""
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    log_weight = 1.0 if pos_weight is None else (pos_weight - 1.0) * target + 1.0
    loss = (1.0 - target) * input + log_weight * softplus_stable(-input)
    loss = loss if weight is None else loss * weight
    return _reduce(loss, legacy_reduction(size_average, reduce, reduction))


# ---- multi-class classification ---------------------------------------------------------------------------------
def _class_view(t, ndim):
    """A (C,) tensor shaped to broadcast along the class dim 1 of an (N, C, d1, ...) input."""
    return t.reshape((-1,) + (1,) * (ndim - 1)) if ndim == 1 else t.reshape((1, -1) + (1,) * (ndim - 2))


def _check_index_target(name, input, target, ignore_index):
    """Shapes as PyTorch requires ((N, C, d...) with (N, d...), or (C,) with a 0-d target) and values in range; the
    target to use. A traced target's values are unknown: it comes back through a check_targets op, which a compiled
    step runs before any kernel that could update a parameter."""
    if target.dtype not in (dt.int64, dt.int32, dt.uint8, dt.int16, dt.int8):
        raise RuntimeError(f"{name}: expected target of integer class indices (dtype Long), got {target.dtype.name}; "
                           "float targets must have the input's shape (class probabilities)")
    if input.ndim < 1:
        raise ValueError(f"{name}: input must have at least 1 dim (C,) or (N, C, ...), got a 0-d tensor")
    expected = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    if input.ndim > 1 and target.ndim >= 1 and target.shape[0] != input.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0]}).")
    if tuple(target.shape) != expected:
        raise RuntimeError(f"{name}: size mismatch (got input: {list(input.shape)}, target: {list(target.shape)}); "
                           f"the target must have shape {list(expected)}")
    n_classes = input.shape[0 if input.ndim == 1 else 1]
    if target._proxy is not None:
        return bind("check_targets", target.to(dt.int64), n_classes=n_classes, ignore_index=int(ignore_index),
                    loss=name)
    check_targets(target._host(), n_classes, ignore_index, name)
    return target


def _target_mask(input, target):
    """Float mask (input's shape) with 1 at each element's target class; rows of ignored targets are all 0."""
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    classes = Tensor._wrap(np.arange(n_classes, dtype=np.int64), dt.int64).to(input.device)
    hits = bind("eq", target.to(dt.int64).unsqueeze(class_dim), _class_view(classes, input.ndim))
    return bind("cast", hits, dtype=input.dtype)


def _weighted_nll(logp, target, weight, ignore_index):
    """Per-element -w[t] * logp[t] and the per-element weights w[t] (0 where target == ignore_index)."""
    class_dim = 0 if logp.ndim == 1 else 1
    mask = _target_mask(logp, target)
    if 0 <= ignore_index < logp.shape[class_dim]:  # an in-range ignore_index matched a class: drop those rows
        kept = bind("cast", bind("ne", target, ignore_index), dtype=logp.dtype)
        mask = mask * kept.unsqueeze(class_dim)
    if weight is not None:
        mask = mask * _class_view(weight, logp.ndim)
    return -(logp * mask).sum(class_dim), mask.sum(class_dim)


def _reduce_weighted(loss, weights, reduction):
    if reduction == "mean":
        return loss.sum() / weights.sum()
    return _reduce(loss, reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """-input[target] per element (input holds log-probabilities); 'mean' divides by the summed target weights."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    target = _check_index_target("nll_loss", input, target, ignore_index)
    loss, weights = _weighted_nll(input, target, weight, ignore_index)
    return _reduce_weighted(loss, weights, reduction)


def _fused_rows(input, target, weight, label_smoothing):
    """Whether cross_entropy runs as the fused row primitives: class indices, (N, C) or (C,) float logits with C >= 1,
    no class weights, no label smoothing."""
    return (not target.dtype.is_floating_point and input.dtype.is_floating_point and input.ndim in (1, 2)
            and input.shape[-1] > 0 and weight is None and label_smoothing == 0)


def _rows_cross_entropy(input, target, ignore_index, reduction):
    """One cross_entropy_rows kernel over the (N, C) logits (a (C,) input is one row); 'mean' divides by the
    number of rows that are not ignored (all ignored: nan, as in PyTorch)."""
    logits, rows = (input, target) if input.ndim == 2 else (input.reshape(1, -1), target.reshape(1))
    rows = rows.to(dt.int64)
    loss = bind("cross_entropy_rows", logits, rows, ignore_index=int(ignore_index))
    if reduction == "mean":
        return loss.sum() / bind("cast", bind("ne", rows, int(ignore_index)), dtype=input.dtype).sum()
    return _reduce(loss if input.ndim == 2 else loss.reshape(()), reduction)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """log_softmax over the class dim + NLL; targets are class indices or class probabilities (input's shape)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    if _fused_rows(input, target, weight, label_smoothing):
        target = _check_index_target("cross_entropy", input, target, ignore_index)
        return _rows_cross_entropy(input, target, ignore_index, reduction)
    logp = input.log_softmax(class_dim)
    n_classes = input.shape[class_dim]
    if target.dtype.is_floating_point:
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"cross_entropy: probability targets must have the input's shape {list(input.shape)}, "
                               f"got {list(target.shape)} (or pass int64 class indices of shape "
                               f"{[input.shape[0]] + list(input.shape[2:])})")
        probs = target if label_smoothing == 0 else target * (1.0 - label_smoothing) + label_smoothing / n_classes
        wlogp = logp if weight is None else logp * _class_view(weight, input.ndim)
        loss = -(wlogp * probs).sum(class_dim)
        return loss.sum() / (input.numel() // n_classes) if reduction == "mean" else _reduce(loss, reduction)
    target = _check_index_target("cross_entropy", input, target, ignore_index)
    loss, weights = _weighted_nll(logp, target, weight, ignore_index)
    out = _reduce_weighted(loss, weights, reduction)
    if label_smoothing == 0:
        return out
    wlogp = logp if weight is None else logp * _class_view(weight, input.ndim)
    kept = bind("cast", bind("ne", target, ignore_index), dtype=input.dtype)
    smooth = -(wlogp.sum(class_dim)) * kept
    smooth = smooth.sum() / weights.sum() if reduction == "mean" else _reduce(smooth, reduction)
    return out * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """target * (log target - input) with input as log-probabilities; reduction may be 'batchmean'."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        loss = bind("where", target > 0, target * target.clamp(min=1e-38).log(), 0.0) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)
