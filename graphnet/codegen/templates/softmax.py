"""log_softmax over the last axis of a contiguous 2-D view: one pass for the max, one for the sum, one to write."""
import numpy as np
from numba import njit

from ..fastmath import fast_exp, fast_log


@njit(cache=True, error_model="numpy")
def log_softmax_rows(x, out):
    """out[i] = x[i] - m - log(sum(exp(x[i] - m))) with m the row max (0 when it is infinite)."""
    n, k = x.shape
    for i in range(n):
        row, dst = x[i], out[i]
        m = -np.inf
        for j in range(k):
            if row[j] > m:
                m = row[j]
        if m == np.inf or m == -np.inf:
            m = 0.0
        m = row.dtype.type(m)
        s = row.dtype.type(0)
        for j in range(k):
            s += fast_exp(row[j] - m)
        shift = m + fast_log(s)
        for j in range(k):
            dst[j] = row[j] - shift
