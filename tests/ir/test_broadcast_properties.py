"""Property tests: broadcasting shape inference and reductions agree with NumPy on random shapes, dims and keepdim."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphnet

SETTINGS = settings(max_examples=60, deadline=None)
small_shapes = st.lists(st.integers(0, 3), min_size=0, max_size=4).map(tuple)


def _numpy_broadcast(*shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        return None


@SETTINGS
@given(st.lists(small_shapes, min_size=1, max_size=3))
def test_broadcast_shapes_matches_numpy(shapes):
    expected = _numpy_broadcast(*shapes)
    if expected is None:
        with pytest.raises(RuntimeError, match="must match the size of tensor"):
            graphnet.broadcast_shapes(*shapes)
    else:
        assert tuple(graphnet.broadcast_shapes(*shapes)) == expected


@SETTINGS
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3))
def test_binary_ops_broadcast_like_numpy(shapes):
    a_shape, b_shape = shapes.input_shapes
    a, b = np.random.randn(*a_shape), np.random.randn(*b_shape)
    out = graphnet.tensor(a) * graphnet.tensor(b)
    assert tuple(out.shape) == shapes.result_shape
    np.testing.assert_allclose(out.numpy(), a * b)


@SETTINGS
@given(small_shapes, small_shapes)
def test_mismatched_operands_raise_a_clear_error(a_shape, b_shape):
    expected = _numpy_broadcast(a_shape, b_shape)
    a, b = graphnet.zeros(*a_shape), graphnet.zeros(*b_shape)
    if expected is None:
        with pytest.raises(RuntimeError, match=r"add: The size of tensor a \(\d+\) must match the size of tensor b"):
            a + b
    else:
        assert tuple((a + b).shape) == expected


@st.composite
def array_and_dims(draw, min_side=0):
    arr = draw(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, min_side=min_side, max_side=4),
                          elements=st.floats(-10, 10, allow_nan=False, width=32)))
    dims = draw(st.lists(st.integers(-arr.ndim, arr.ndim - 1), min_size=1, max_size=arr.ndim,
                         unique_by=lambda d: d % arr.ndim))
    return arr, tuple(dims), draw(st.booleans())


REDUCTIONS = {"sum": np.sum, "mean": np.mean, "amax": np.amax, "amin": np.amin}


@SETTINGS
@given(array_and_dims(min_side=1), st.sampled_from(sorted(REDUCTIONS)))
def test_reductions_match_numpy(case, name):
    arr, dims, keepdim = case
    out = getattr(graphnet.tensor(arr), name)(dims, keepdim=keepdim)
    expected = REDUCTIONS[name](arr, axis=dims, keepdims=keepdim)
    assert tuple(out.shape) == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)


@SETTINGS
@given(array_and_dims(min_side=0))
def test_sum_of_possibly_empty_arrays(case):
    arr, dims, keepdim = case
    np.testing.assert_allclose(graphnet.tensor(arr).sum(dims, keepdim).numpy(), arr.sum(axis=dims, keepdims=keepdim))


@SETTINGS
@given(array_and_dims(min_side=1))
def test_single_dim_reductions_match_numpy(case):
    arr, dims, keepdim = case
    x, d = graphnet.tensor(arr), dims[0]
    np.testing.assert_array_equal(x.argmax(d, keepdim).numpy(), np.argmax(arr, axis=d, keepdims=keepdim))
    np.testing.assert_allclose(x.prod(d, keepdim).numpy(), np.prod(arr, axis=d, keepdims=keepdim), rtol=1e-10)
    values, indices = x.min(d, keepdim)
    np.testing.assert_allclose(values.numpy(), np.min(arr, axis=d, keepdims=keepdim))
    np.testing.assert_array_equal(indices.numpy(), np.argmin(arr, axis=d, keepdims=keepdim))


@SETTINGS
@given(hnp.arrays(np.int32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=st.integers(-50, 50)),
       st.booleans())
def test_integer_and_bool_sums(arr, keepdim):
    out = graphnet.tensor(arr).to(graphnet.int32).sum(0, keepdim=keepdim)
    assert out.dtype is graphnet.int64
    np.testing.assert_array_equal(out.numpy(), arr.sum(0, keepdims=keepdim, dtype=np.int64))
    counts = graphnet.tensor(arr > 0).sum(-1)
    np.testing.assert_array_equal(counts.numpy(), (arr > 0).sum(-1))
