"""The gemm template: row-major float32 products through BLAS with transpose flags, against NumPy."""
import numpy as np
import pytest

from graphnet.codegen.templates.gemm import gemm

RNG = np.random.default_rng(0)
NO_BIAS = np.zeros(1, np.float32)


@pytest.mark.parametrize("m,n,k", [(5, 3, 7), (1, 4, 6), (6, 1, 2), (3, 5, 1), (1, 1, 1), (17, 33, 65)])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_matches_numpy_for_every_transpose_and_odd_sizes(m, n, k, ta, tb):
    a = RNG.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = RNG.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c = np.full((m, n), np.nan, np.float32)
    gemm(a, b, c, ta, tb, NO_BIAS, False, False)
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)


def test_gemm_reads_row_pitches_of_sliced_rows_and_single_rows_with_any_stride():
    base = RNG.standard_normal((6, 10)).astype(np.float32)
    a = base[:, 2:7]  # rows of 5 with a pitch of 10
    b = RNG.standard_normal((5, 3)).astype(np.float32)
    c = np.empty((6, 3), np.float32)
    gemm(a, b, c, False, False, NO_BIAS, False, False)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    row = np.ascontiguousarray(RNG.standard_normal((4, 1)).astype(np.float32).T)  # (1, 4): leading stride 4 bytes
    other, out = RNG.standard_normal((4, 3)).astype(np.float32), np.empty((1, 3), np.float32)
    gemm(row, other, out, False, False, NO_BIAS, False, False)
    np.testing.assert_allclose(out, row @ other, rtol=1e-5, atol=1e-5)


def test_gemm_with_an_empty_inner_dimension_writes_zeros():
    c = np.full((2, 3), np.nan, np.float32)
    gemm(np.empty((2, 0), np.float32), np.empty((0, 3), np.float32), c, False, False, NO_BIAS, False, False)
    np.testing.assert_array_equal(c, 0)


@pytest.mark.parametrize("has_bias,relu", [(True, False), (True, True), (False, True)])
def test_gemm_applies_the_bias_and_relu_epilogue(has_bias, relu):
    a, b = RNG.standard_normal((4, 6)).astype(np.float32), RNG.standard_normal((5, 6)).astype(np.float32)
    bias, c = RNG.standard_normal(5).astype(np.float32), np.empty((4, 5), np.float32)
    gemm(a, b, c, False, True, bias, has_bias, relu)
    want = a.astype(np.float64) @ b.T + (bias if has_bias else 0)
    np.testing.assert_allclose(c, np.maximum(want, 0) if relu else want, rtol=1e-5, atol=1e-5)
