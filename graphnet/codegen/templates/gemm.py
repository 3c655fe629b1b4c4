"""Row-major float32 GEMM straight through BLAS (the sgemm Numba itself binds from SciPy), compiled once with one
signature for every layout: operands are passed as row-contiguous arrays with a transpose flag, where `np.dot`
inside Numba compiles a specialisation per operand layout (about a second each, cold). A Linear's bias and ReLU run
as its epilogue, over the output BLAS has just written (still in cache)."""
import numpy as np
from numba import njit, types
from numba.np.linalg import _BLAS

_sgemm = _BLAS().numba_xxgemm(types.float32)
_N, _T = ord("N"), ord("T")


@njit(cache=True, inline="always")
def _pitch(x):
    """Elements between rows; a single row may carry any leading stride (NumPy ignores size-1 dims)."""
    return max(x.strides[0] // 4, x.shape[1], 1)


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
    (its leading stride is the row pitch). BLAS is column-major, so it computes c.T = op(b).T @ op(a).T."""
    m, n = c.shape
    k = a.shape[0] if ta else a.shape[1]
    if m == 0 or n == 0:
        return
    if k == 0:
        c[:] = 0
    else:
        alpha_beta = np.empty(2, np.float32)
        alpha_beta[0], alpha_beta[1] = 1.0, 0.0
        _sgemm(ord("s"), _T if tb else _N, _T if ta else _N, n, m, k, alpha_beta[0:].ctypes, b.ctypes, _pitch(b),
               a.ctypes, _pitch(a), alpha_beta[1:].ctypes, c.ctypes, _pitch(c))
    if has_bias or relu:
        bias_relu(c, bias, has_bias, relu)


@njit(cache=True, nogil=True)
def gemm_batched(a, b, c, ta, tb, no_bias):
    """c[i] = op(a[i]) @ op(b[i]) for every i of the leading dim (attention's q @ k^T and att @ v, per batch*head),
    each a row-contiguous 2-d GEMM."""
    for i in range(c.shape[0]):
        gemm(a[i], b[i], c[i], ta, tb, no_bias, False, False)
