"""Row-major float32 GEMM straight through BLAS (blas.mm: NumPy's OpenBLAS where found), compiled once with one
signature for every layout: operands are passed as row-contiguous arrays with a transpose flag, where `np.dot`
inside Numba compiles a specialisation per operand layout (about a second each, cold). A Linear's bias and ReLU run
as its epilogue, over the output BLAS has just written (still in cache)."""
import numpy as np
from numba import njit

from .blas import mm


@njit(cache=True, nogil=True)
def bias_relu(c, bias, has_bias, relu):
    """c (m, n) <- relu?(c + bias[None, :]) in place."""
    m, n = c.shape
    for i in range(m):
        for j in range(n):
            v = c[i, j] + bias[j] if has_bias else c[i, j]
            c[i, j] = max(v, np.float32(0.0)) if relu else v


@njit(cache=True, nogil=True)
def gemm(a, b, c, ta, tb, bias, has_bias, relu):
    """c (m, n) = relu?(op(a) @ op(b) + bias), op(x) = x.T when its flag is set; every array's rows are contiguous
    (its leading stride is the row pitch)."""
    mm(a, b, c, ta, tb, 0.0)
    if has_bias or relu:
        bias_relu(c, bias, has_bias, relu)


@njit(cache=True, nogil=True)
def gemm_batched(a, b, c, ta, tb, no_bias):
    """c[i] = op(a[i]) @ op(b[i]) for every i of the leading dim (attention's q @ k^T and att @ v, per batch*head),
    each a row-contiguous 2-d GEMM."""
    for i in range(c.shape[0]):
        gemm(a[i], b[i], c[i], ta, tb, no_bias, False, False)
