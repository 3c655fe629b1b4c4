"""Cross-entropy over class indices on the GPU, one thread per row of the (N, C) logits (C is small), matching the
CPU kernels: ignored rows give 0 (zero gradient rows), a target out of [0, C) gives NaN (a kernel cannot raise; a
traced loss checks its targets first, with check_targets). This is the kernel source; the launches are
runtime/cuda_kernels/softmax.py's."""
import functools

from ..cuda import load

SOURCE = '''import math

from numba import cuda


@cuda.jit(device=True)
def row_logsumexp(x, base, k, zero):
    """m + log(sum(exp(x - m))) over x[base:base + k], m the row max (0 when -inf: an all -inf row gives NaN, and a
    row holding +inf gives NaN too, as PyTorch's log_softmax does); NaN in, NaN out."""
    m = x[base]
    for j in range(1, k):
        if x[base + j] > m:
            m = x[base + j]
    if m == -math.inf:
        m = zero
    s = zero
    for j in range(k):
        s += math.exp(x[base + j] - m)
    return m + math.log(s)


@cuda.jit(cache=True)
def targets_check(target, n, k, ignore_index, flag):
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        t = target[i]
        if t != ignore_index and (t < 0 or t >= k):
            flag[0] = 1


@cuda.jit(cache=True)
def rows_fwd(x, target, loss, n, k, ignore_index, zero):
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        t = target[i]
        if t == ignore_index:
            loss[i] = zero
        elif t < 0 or t >= k:
            loss[i] = math.nan
        else:
            loss[i] = row_logsumexp(x, i * k, k, zero) - x[i * k + t]


@cuda.jit(cache=True)
def rows_bwd(g, x, target, dx, n, k, ignore_index, zero):
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        t, base = target[i], i * k
        if t == ignore_index or t < 0 or t >= k:
            for j in range(k):
                dx[base + j] = zero if t == ignore_index else math.nan
        else:
            shift, gi = row_logsumexp(x, base, k, zero), g[i]
            for j in range(k):
                p = math.exp(x[base + j] - shift)
                dx[base + j] = (p - 1 if j == t else p) * gi
'''


@functools.lru_cache(maxsize=None)
def kernel(name):
    return load(SOURCE, name)
