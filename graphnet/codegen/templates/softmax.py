"""Softmax-family library kernels over the rows of a contiguous 2-D view, in the input's float type: log_softmax,
and cross-entropy over class indices with its gradient (one pass over each row's logits, the row in cache), and the
class-index check that runs before them when the targets are computed inside a compiled step."""
import numpy as np
from numba import njit

from ..fastmath import fast_exp, fast_log


class KernelIndexError(IndexError):
    """A compiled kernel found an index out of range; the Program reruns the graph's NumPy impls for the eager
    error (a kernel can only raise a constant message)."""


@njit(cache=True)
def check_targets(target, n_classes, ignore_index, out):
    """out = target, raising KernelIndexError unless every class index is in [0, n_classes) or ignore_index."""
    for i in range(target.shape[0]):
        t = target[i]
        if t != ignore_index and (t < 0 or t >= n_classes):
            raise KernelIndexError("graphnet: a class index is out of bounds")
        out[i] = t


LANES = 16  # the row max runs over this many independent maxima, which LLVM keeps in one vector register


@njit(cache=True, error_model="numpy")
def _row_max(row, lanes):
    """The row's max, NaNs skipped (the exp sum that follows turns them into NaN), as LANES running maxima in
    `lanes` (scratch): one running max is a serial compare chain LLVM does not vectorise without nnan (7.3 against
    1.8 ms over 700x10,000 float32)."""
    lanes[:] = -np.inf
    n = row.shape[0]
    body = n - n % LANES
    for start in range(0, body, LANES):
        for k in range(LANES):
            v = row[start + k]
            lanes[k] = v if v > lanes[k] else lanes[k]
    m = lanes[0]
    for k in range(1, LANES):
        m = lanes[k] if lanes[k] > m else m
    for j in range(body, n):
        m = row[j] if row[j] > m else m
    return m


@njit(cache=True, error_model="numpy")
def _row_shift(row, lanes):
    """The row max as the exp shift, in the row's float type: 0 when it is -inf (an all -inf row gives NaN, as
    PyTorch's log_softmax; a +inf max gives NaN too)."""
    m = _row_max(row, lanes)
    return row.dtype.type(0) if m == -np.inf else row.dtype.type(m)


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _row_logsumexp(row, lanes):
    """m + log(sum(exp(row - m))) with m the row's shift. Reassociation lets LLVM vectorise the sum (5x at
    C = 1000); fast_exp keeps its exact steps, and inf/NaN still propagate."""
    m = _row_shift(row, lanes)
    s = row.dtype.type(0)
    for j in range(row.shape[0]):
        s += fast_exp(row[j] - m)
    return m + fast_log(s)


@njit(cache=True, error_model="numpy")
def log_softmax_rows(x, out):
    """out[i] = x[i] - logsumexp(x[i])."""
    lanes = np.empty(LANES, x.dtype)
    for i in range(x.shape[0]):
        row, dst = x[i], out[i]
        shift = _row_logsumexp(row, lanes)
        for j in range(row.shape[0]):
            dst[j] = row[j] - shift


@njit(cache=True, error_model="numpy")
def cross_entropy_rows(x, target, ignore_index, loss):
    """loss[i] = logsumexp(x[i]) - x[i, target[i]]; 0 where target[i] == ignore_index, NaN for a target out of
    [0, C) (a traced loss never gets here with one: its targets pass check_targets first)."""
    n, k = x.shape
    lanes = np.empty(LANES, x.dtype)
    for i in range(n):
        t = target[i]
        if t == ignore_index:
            loss[i] = 0.0
        elif t < 0 or t >= k:
            loss[i] = np.nan
        else:
            loss[i] = _row_logsumexp(x[i], lanes) - x[i, t]


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _softmax_minus_onehot_row(row, t, gi, dst, lanes):
    """dst = (softmax(row) - onehot(t)) * gi: exp(row - max) stored while it is summed (one fast_exp per element,
    and one call site: Numba mis-inlines a second one), then scaled by gi / sum in place while the row is in cache."""
    m = _row_shift(row, lanes)
    s = row.dtype.type(0)
    for j in range(row.shape[0]):
        e = fast_exp(row[j] - m)
        dst[j] = e
        s += e
    scale = gi / s
    for j in range(row.shape[0]):
        dst[j] *= scale
    dst[t] -= gi


@njit(cache=True, error_model="numpy")
def cross_entropy_rows_backward(g, x, target, ignore_index, out):
    """out[i] = (softmax(x[i]) - onehot(target[i])) * g[i]; zero rows for ignored targets, NaN rows for targets
    out of [0, C)."""
    n, k = x.shape
    lanes = np.empty(LANES, x.dtype)
    for i in range(n):
        t = target[i]
        if t == ignore_index:
            out[i, :] = 0.0
        elif t < 0 or t >= k:
            out[i, :] = np.nan
        else:
            _softmax_minus_onehot_row(x[i], t, g[i], out[i], lanes)
