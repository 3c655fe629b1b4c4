"""Row-major GEMM for the njit library kernels, through NumPy's own OpenBLAS when it is there: Numba's np.dot binds
SciPy's, and at conv shapes NumPy's measured 1.3-1.8x faster ((16x144)@(144x1024): 43 against 25 GFLOP/s on one
core, OpenBLAS 0.3.31 against 0.3.30). Calls go by symbol name (an ExternalFunction resolved when the kernel is
linked), so kernels that use it stay cacheable; without NumPy's library they go through Numba's SciPy binding."""
import ctypes
import glob
import os

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.np.linalg import _BLAS

_NAMES = {np.float32: "scipy_cblas_sgemm64_", np.float64: "scipy_cblas_dgemm64_"}  # NumPy 2's ILP64 scipy-openblas
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _load_numpy_blas():
    """Whether NumPy's bundled OpenBLAS (with the cblas GEMMs in _NAMES) was found and made visible to the linker."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so*"))):
        try:
            if all(hasattr(ctypes.CDLL(path), name) for name in _NAMES.values()):
                llvm.load_library_permanently(path)
                return True
        except OSError:
            continue
    return False


NUMPY_BLAS = _load_numpy_blas()


def _cblas(name, real):
    i64, i32, ptr = types.int64, types.int32, types.voidptr
    return types.ExternalFunction(name, types.void(i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr,
                                                   i64))


_SGEMM, _DGEMM = _cblas(_NAMES[np.float32], types.float32), _cblas(_NAMES[np.float64], types.float64)
_BLAS()  # makes Numba's helper numba_xxgemm (SciPy's BLAS) linkable; declared here with untyped pointers
_XXGEMM = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char, types.intp, types.intp, types.intp, types.voidptr, types.voidptr,
    types.intp, types.voidptr, types.intp, types.voidptr, types.voidptr, types.intp))


@njit(cache=True, inline="always")
def _pitch(x):
    """Elements between rows; a single row may carry any leading stride (NumPy ignores size-1 dims)."""
    return max(x.strides[0] // x.itemsize, x.shape[1], 1)


@njit(cache=True, inline="always")
def _strided(x):
    return x.shape[0] > 0 and x.shape[1] > 1 and x.strides[1] != x.itemsize


@njit(cache=True, inline="always")
def _check_rows(a, b, c):
    """BLAS reads and writes whole rows from the pitch: a strided row would be read wrong, or written out of bounds."""
    if _strided(a) or _strided(b) or _strided(c):
        raise ValueError("blas.mm: every operand's rows must be contiguous (a strided view reached a GEMM)")


@njit(cache=True, nogil=True)
def mm_numpy(a, b, c, ta, tb, beta):
    """c (m, n) = op(a) @ op(b) + beta * c (beta 0 or 1), op(x) = x.T where its flag is set; float32 or float64
    arrays whose rows are contiguous (the leading stride is the row pitch)."""
    _check_rows(a, b, c)
    m, n = c.shape
    k = a.shape[0] if ta else a.shape[1]
    if m and n and k:
        args = (_ROW_MAJOR, _TRANS if ta else _NO_TRANS, _TRANS if tb else _NO_TRANS, m, n, k, 1.0, a.ctypes,
                _pitch(a), b.ctypes, _pitch(b), beta, c.ctypes, _pitch(c))
        if c.itemsize == 4:
            _SGEMM(*args)
        else:
            _DGEMM(*args)
    elif m and n and beta == 0:
        c[:] = 0


@njit(cache=True, nogil=True)
def mm_scipy(a, b, c, ta, tb, beta):
    """mm_numpy through Numba's binding of SciPy's column-major BLAS: c.T = op(b).T @ op(a).T."""
    _check_rows(a, b, c)
    m, n = c.shape
    k = a.shape[0] if ta else a.shape[1]
    if m and n and k:
        scalars = np.empty(2, c.dtype)
        scalars[0], scalars[1] = 1.0, beta
        _XXGEMM(ord("s") if c.itemsize == 4 else ord("d"), ord("T") if tb else ord("N"), ord("T") if ta else ord("N"),
                n, m, k, scalars[0:].ctypes, b.ctypes, _pitch(b), a.ctypes, _pitch(a), scalars[1:].ctypes, c.ctypes,
                _pitch(c))
    elif m and n and beta == 0:
        c[:] = 0


mm = mm_numpy if NUMPY_BLAS else mm_scipy
