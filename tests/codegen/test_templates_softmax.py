"""The cross-entropy library kernels (float32, called from Python as the Program steps do) vs the ops' NumPy impls,
with ignored rows, huge and infinite logits, an in-range ignore_index, and NaN for targets out of range."""
import numpy as np
import pytest

from graphnet.codegen.templates import softmax
from graphnet.ir.ops import OPS

RNG = np.random.default_rng(5)


def _case(n, c, ignore_index):
    x = (RNG.standard_normal((n, c)) * 4).astype(np.float32)
    t = RNG.integers(0, c, n)
    t[n // 2] = ignore_index
    x[0, 0], x[-1, c // 2] = 1e4, -1e4
    x[1, (t[1] + 1) % c] = -np.inf
    return x, t


def _run(x, t, ignore_index):
    g = RNG.standard_normal(len(t)).astype(np.float32)
    loss, dx = np.full(len(t), 7, np.float32), np.full(x.shape, 7, np.float32)
    softmax.cross_entropy_rows(x, t, ignore_index, loss)
    softmax.cross_entropy_rows_backward(g, x, t, ignore_index, dx)
    return g, loss, dx


@pytest.mark.parametrize("shape, ignore_index", [((9, 5), -100), ((3, 1), -100), ((65, 33), 2), ((2, 10), -1)])
def test_kernels_match_the_op_impls(shape, ignore_index):
    x, t = _case(*shape, ignore_index)
    g, loss, dx = _run(x, t, ignore_index)
    want = OPS["cross_entropy_rows"].impl(x, t, ignore_index=ignore_index)
    np.testing.assert_allclose(loss, want, rtol=3e-6, atol=3e-6)
    want = OPS["cross_entropy_rows_backward"].impl(g, x, t, ignore_index=ignore_index)
    np.testing.assert_allclose(dx, want, rtol=3e-6, atol=1e-7)
    ignored = t == ignore_index
    assert (loss[ignored] == 0).all() and (dx[ignored] == 0).all()


def test_infinite_rows_follow_the_impl():
    x = np.array([[-np.inf, -np.inf], [np.inf, 0.0], [0.0, -np.inf], [np.nan, 1.0]], np.float32)
    t = np.array([0, 1, 1, 0])
    g, loss, dx = _run(x, t, -100)
    np.testing.assert_array_equal(loss, OPS["cross_entropy_rows"].impl(x, t, ignore_index=-100))
    np.testing.assert_allclose(dx, OPS["cross_entropy_rows_backward"].impl(g, x, t, ignore_index=-100))


def test_targets_out_of_range_give_nan_rows_and_write_nothing_else():
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    t = np.array([0, 3, -5, -100])
    g, loss, dx = _run(x, t, -100)
    assert np.isnan(loss[1:3]).all() and np.isnan(dx[1:3]).all()
    assert np.isfinite(loss[0]) and loss[3] == 0 and not dx[3].any()
    valid = t[:1]
    np.testing.assert_allclose(dx[:1], OPS["cross_entropy_rows_backward"].impl(g[:1], x[:1], valid, ignore_index=-100),
                               rtol=3e-6, atol=1e-7)


@pytest.mark.parametrize("c", [15, 16, 17, 47, 1000])
def test_the_lane_max_finds_the_max_anywhere_in_the_row(c):
    """The row max runs over softmax.LANES running maxima and a tail: a peak of 200 in the first lane block, the
    last one or the tail must be found, or exp(200 - max) overflows and the loss is inf or NaN."""
    places = sorted({0, softmax.LANES - 1, c - c % softmax.LANES, c - 1} & set(range(c)))
    x = RNG.standard_normal((len(places) + 1, c)).astype(np.float32)
    x[-1, c // 2] = np.nan  # a NaN is skipped by the max and makes its row's loss and gradient NaN, as the impl's
    for row, j in enumerate(places):
        x[row, j] = 200.0
    t = RNG.integers(0, c, len(x))
    g, loss, dx = _run(x, t, -100)
    np.testing.assert_allclose(loss, OPS["cross_entropy_rows"].impl(x, t, ignore_index=-100), rtol=3e-6, atol=3e-6)
    np.testing.assert_allclose(dx, OPS["cross_entropy_rows_backward"].impl(g, x, t, ignore_index=-100),
                               rtol=3e-6, atol=1e-7)
    out = np.full(x.shape, 7, np.float32)
    softmax.log_softmax_rows(x, out)
    np.testing.assert_allclose(out, OPS["log_softmax"].impl(x, dim=1), rtol=3e-6, atol=3e-5)
    assert np.isnan(loss[-1]) and np.isnan(dx[-1]).all() and np.isfinite(loss[:-1]).all()
