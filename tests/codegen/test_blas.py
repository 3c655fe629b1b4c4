"""blas.mm, the GEMM of the njit library kernels, through NumPy's OpenBLAS and through Numba's SciPy binding:
every transpose, both float dtypes, accumulation (beta 1), row pitches of sliced rows, an empty inner dim."""
import numpy as np
import pytest

from graphnet.codegen.templates import blas

RNG = np.random.default_rng(0)
BACKENDS = [pytest.param(blas.mm_numpy, marks=pytest.mark.skipif(not blas.NUMPY_BLAS, reason="no NumPy OpenBLAS")),
            blas.mm_scipy]


@pytest.mark.parametrize("mm", BACKENDS)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-4), (np.float64, 1e-12)])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_mm_matches_numpy(mm, dtype, tol, ta, tb, beta):
    m, n, k = 7, 5, 9
    a = RNG.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = RNG.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = RNG.standard_normal((m, n)).astype(dtype)
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64) + beta * c
    mm(a, b, c, ta, tb, beta)
    np.testing.assert_allclose(c, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("mm", BACKENDS)
def test_mm_reads_and_writes_row_pitches(mm):
    a = RNG.standard_normal((6, 10)).astype(np.float32)[:, 2:7]  # rows of 5, pitch 10
    b = RNG.standard_normal((5, 8)).astype(np.float32)[:, 1:4]
    out = np.full((6, 9), np.nan, np.float32)
    mm(a, b, out[:, 3:6], False, False, 0.0)
    np.testing.assert_allclose(out[:, 3:6], a @ b, rtol=1e-5, atol=1e-5)
    assert np.isnan(out[:, :3]).all() and np.isnan(out[:, 6:]).all()


@pytest.mark.parametrize("mm", BACKENDS)
def test_mm_with_an_empty_inner_dimension(mm):
    c = np.full((2, 3), np.nan, np.float32)
    mm(np.empty((2, 0), np.float32), np.empty((0, 3), np.float32), c, False, False, 0.0)
    np.testing.assert_array_equal(c, 0)
    c[:] = 4
    mm(np.empty((2, 0), np.float32), np.empty((0, 3), np.float32), c, False, False, 1.0)
    np.testing.assert_array_equal(c, 4)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_strided_operand_is_refused_not_read_or_written_out_of_bounds(which):
    arrays = [np.ones((4, 6), np.float32), np.ones((6, 5), np.float32), np.zeros((4, 5), np.float32)]
    arrays[which] = np.ones((arrays[which].shape[0], 2 * arrays[which].shape[1]), np.float32)[:, ::2]
    with pytest.raises(ValueError, match="rows must be contiguous"):
        blas.mm(*arrays, False, False, 0.0)
