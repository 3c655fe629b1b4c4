"""Tensor indexing: x[key] vs NumPy (basic views, advanced copies), x[key] = v with autograd, index ops, errors."""
import numpy as np
import pytest

import graphnet
from graphnet.autograd import gradcheck

A = np.arange(60.0).reshape(3, 4, 5)
ROW = np.array([2, 0, 2])
MASK2 = (A[:, :, 0] % 3) == 0


def f64(a=A, grad=True):
    return graphnet.tensor(a, dtype=graphnet.float64, requires_grad=grad)


BASIC = [1, -1, slice(None), slice(1, None), slice(None, None, 2), slice(-3, -1), (0, 1), (0, 1, 2),
         (slice(None), 2), (Ellipsis, 1), (1, Ellipsis), (None, 0), (slice(None), None, slice(1, 3)),
         (Ellipsis, None), (0, slice(None, None, 3), -2), ()]


@pytest.mark.parametrize("key", BASIC)
def test_basic_indexing_matches_numpy_and_is_a_view(key):
    x = graphnet.tensor(A)
    out = x[key]
    np.testing.assert_array_equal(out.numpy(), A[key])
    assert np.shares_memory(out.numpy(), x.numpy())
    assert out._version is x._version


def test_slice_past_the_end_is_empty():
    assert graphnet.tensor(A)[5:10].shape == (0, 4, 5)


# (NumPy-equivalent key, graphnet key): PyTorch applies integers first, so an int beside an array is NumPy's with the
# int applied before the array indexing.
ADVANCED = [
    (ROW, graphnet.tensor(ROW)),
    ([0, 2], [0, 2]),
    ((ROW, slice(1, 3)), (graphnet.tensor(ROW), slice(1, 3))),
    ((slice(None), [1, 3], [0, 4]), (slice(None), [1, 3], [0, 4])),
    ((ROW, slice(None), [0, 1, 4]), (ROW, slice(None), [0, 1, 4])),
    (A[:, :, 0] > 20, graphnet.tensor(A[:, :, 0] > 20)),
    ((MASK2, slice(0, 2)), (graphnet.tensor(MASK2), slice(0, 2))),
    ((Ellipsis, [[0], [4]]), (Ellipsis, [[0], [4]])),
    ((None, [1, 1]), (None, [1, 1])),
    (A > 50, graphnet.tensor(A > 50)),
    (([True, False, True],), ([True, False, True],)),
    ((np.array([[0, 1], [2, 0]]), 1), (graphnet.tensor([[0, 1], [2, 0]]), 1)),
]


@pytest.mark.parametrize("np_key,key", ADVANCED)
def test_advanced_indexing_matches_numpy(np_key, key):
    x = graphnet.tensor(A)
    expected = A[np_key]
    out = x[key]
    np.testing.assert_array_equal(out.numpy(), expected)
    assert out.shape == expected.shape
    assert not np.shares_memory(out.numpy(), x.numpy())


def test_integers_apply_before_advanced_indices_as_in_pytorch():
    x = graphnet.tensor(A)
    assert x[:, [0], 0].shape == (3, 1)
    assert x[0, :, [1, 2]].shape == (4, 2)
    np.testing.assert_array_equal(x[0, :, [1, 2]].numpy(), A[0][:, [1, 2]])


def test_scalar_bool_and_0d_index_tensor():
    x = graphnet.tensor(A)
    assert x[:, True].shape == (3, 1, 4, 5)
    assert x[:, False].shape == (3, 0, 4, 5)
    out = x[graphnet.tensor(2)]
    np.testing.assert_array_equal(out.numpy(), A[2])
    assert np.shares_memory(out.numpy(), x.numpy())


def test_writes_through_a_view_reach_the_base():
    x = graphnet.zeros(3, 4)
    col = x[:, 1]
    col[0] = 5.0
    x[2][3] = 7.0
    expected = np.zeros((3, 4))
    expected[0, 1], expected[2, 3] = 5.0, 7.0
    np.testing.assert_array_equal(x.numpy(), expected)
    assert x._version[0] == 2 and col._version[0] == 2


@pytest.mark.parametrize("key,value", [
    ((slice(None), 1), 3.0), ((0, slice(1, 3)), np.array([[9.0], [8.0]])), (ROW, -1.0),
    (A > 30, 0.0), ((slice(None), [0, 2], [1, 3]), np.array([10.0, 20.0])), (Ellipsis, 1.5), ((1, 2, 3), 42.0),
    ((None, 1), np.arange(5.0)),
])
def test_setitem_matches_numpy(key, value):
    expected = A.copy()
    expected[key] = value
    x = graphnet.tensor(A)
    gkey = graphnet.tensor(key) if isinstance(key, np.ndarray) else key
    x[gkey] = graphnet.tensor(value) if isinstance(value, np.ndarray) else value
    np.testing.assert_array_equal(x.numpy(), expected)


def test_setitem_casts_value_to_tensor_dtype():
    x = graphnet.zeros(3, dtype=graphnet.int64)
    x[1] = 2.7
    x[graphnet.tensor([0, 2])] = graphnet.tensor([5.0, 6.0])
    assert x.dtype is graphnet.int64
    np.testing.assert_array_equal(x.numpy(), [5, 2, 6])


def test_setitem_gradients_for_tensor_and_value():
    def f(a, v):
        c = a * 1.0
        c[1:, [0, 2]] = v
        return c * c

    assert gradcheck(f, [f64(np.random.randn(3, 4)), f64(np.random.randn(2))])


def test_setitem_records_autograd_on_a_non_leaf():
    a = f64(np.ones((2, 3)))
    v = f64(np.array([2.0, 3.0]))
    c = a * 2.0
    c[:, 1] = v
    assert c.grad_fn.name() == "IndexPutBackward0"
    c.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[2.0, 0.0, 2.0], [2.0, 0.0, 2.0]])
    np.testing.assert_array_equal(v.grad.numpy(), [1.0, 1.0])


def test_setitem_on_a_leaf_requiring_grad_is_refused_but_allowed_under_no_grad():
    w = f64(np.zeros(3))
    with pytest.raises(RuntimeError, match="__setitem__: a leaf Variable that requires grad"):
        w[0] = 1.0
    with graphnet.no_grad():
        w[0] = 1.0
    np.testing.assert_array_equal(w.detach().numpy(), [1.0, 0.0, 0.0])


def test_value_saved_for_backward_then_modified_is_caught():
    a = f64(np.ones(3))
    b = a * 1.0
    c = b * b
    b[0] = 2.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()


@pytest.mark.parametrize("key", [
    (slice(None), 1), (slice(1, None, 2),), (ROW,), ((ROW, slice(None), [0, 1, 4])), (0, [1, 1, 3]),
    (MASK2,), (Ellipsis, [4, 0]), ([[0, 0], [1, 2]], 2), (None, 2, slice(None, None, 2)),
])
def test_getitem_gradients(key):
    gkey = tuple(graphnet.tensor(k) if isinstance(k, np.ndarray) else k for k in key)
    assert gradcheck(lambda a: a[gkey] * 1.0, [f64(np.random.randn(3, 4, 5))])


def test_repeated_indices_accumulate_gradients():
    x = f64(np.arange(4.0))
    x[[0, 0, 3, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 0.0, 1.0])


def test_index_put_function_and_accumulate():
    x = graphnet.zeros(4)
    idx = graphnet.tensor([0, 0, 2])
    vals = graphnet.tensor([1.0, 2.0, 3.0])
    out = graphnet.index_put(x, (idx,), vals, accumulate=True)
    np.testing.assert_array_equal(out.numpy(), [3.0, 0.0, 3.0, 0.0])
    np.testing.assert_array_equal(x.numpy(), np.zeros(4))
    x.index_put_((idx,), vals, accumulate=True)
    np.testing.assert_array_equal(x.numpy(), [3.0, 0.0, 3.0, 0.0])
    assert gradcheck(lambda a, v: graphnet.index_put(a, (idx,), v, accumulate=True), [f64(np.ones(4)),
                                                                                        f64(np.ones(3))])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(dim):
    idx = np.array([2, 0, 2])
    x = graphnet.tensor(A)
    np.testing.assert_array_equal(graphnet.index_select(x, dim, graphnet.tensor(idx)).numpy(),
                                  np.take(A, idx, axis=dim))
    assert gradcheck(lambda a: a.index_select(dim, graphnet.tensor(idx)), [f64(np.random.randn(3, 3, 3))])


@pytest.mark.parametrize("bad", [4, -1, 10 ** 8])
def test_index_select_refuses_an_index_out_of_range_as_pytorch_does(bad):
    """PyTorch's message, and no negative wrap-around (x[idx] wraps, index_select does not)."""
    with pytest.raises(IndexError, match=f"index out of range in self .*index {bad} is out of bounds for dimension 1"):
        graphnet.index_select(graphnet.tensor(A), 1, graphnet.tensor([0, bad]))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_matches_take_along_axis(dim):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, A.shape[dim], size=(3, 4, 5))
    out = graphnet.gather(graphnet.tensor(A), dim, graphnet.tensor(idx))
    np.testing.assert_array_equal(out.numpy(), np.take_along_axis(A, idx, axis=dim))
    assert gradcheck(lambda a: a.gather(dim, graphnet.tensor(idx[:2, :2, :2])), [f64(np.random.randn(3, 4, 5))])


def test_gather_errors():
    x = graphnet.tensor(A[0])
    with pytest.raises(RuntimeError, match="gather\\(\\): index 9 is out of bounds for dimension 1 with size 5"):
        x.gather(1, graphnet.tensor([[9]]))
    with pytest.raises(RuntimeError, match="gather\\(\\): index -1 is out of bounds for dimension 1 with size 5"):
        x.gather(1, graphnet.tensor([[-1]]))  # PyTorch's gather takes no negative index
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of dimensions"):
        x.gather(1, graphnet.tensor([1]))
    with pytest.raises(RuntimeError, match="gather\\(\\): Expected dtype int32/int64 for index"):
        x.gather(1, graphnet.tensor([[1.0]]))
    np.testing.assert_array_equal(x.gather(1, graphnet.tensor([[1]], dtype=graphnet.int32)).numpy(), A[0][:1, 1:2])


def test_masked_select():
    x = graphnet.tensor(A[0])
    mask = graphnet.tensor(A[0, 0] > 1)
    np.testing.assert_array_equal(graphnet.masked_select(x, mask).numpy(),
                                  A[0][np.broadcast_to(A[0, 0] > 1, (4, 5))])


@pytest.mark.parametrize("key,exc,message", [
    (5, IndexError, "index 5 is out of bounds for dimension 0 with size 3"),
    ((0, -6), IndexError, "index -6 is out of bounds for dimension 1 with size 4"),
    ([0, 3], IndexError, "index 3 is out of bounds for dimension 0 with size 3"),
    ((slice(None), [9]), IndexError, "index 9 is out of bounds for dimension 1 with size 4"),
    ((0, 0, 0, 0), IndexError, "too many indices for tensor of dimension 3"),
    ((Ellipsis, 0, Ellipsis), IndexError, "an index can only have a single ellipsis"),
    (np.ones((3, 3), bool), IndexError, r"The shape of the mask \[3, 3\] at index 1 does not match the shape of the "
                                        r"indexed tensor \[3, 4, 5\] at index 1"),
    (([0, 1], [0, 1, 2]), IndexError, "shape mismatch: indexing tensors could not be broadcast together"),
    (1.5, IndexError, "only integers, slices"),
    ([0.5], IndexError, "tensors used as indices must be long, int, byte or bool tensors"),
    (slice(None, None, -1), ValueError, "step must be greater than zero"),
])
def test_index_errors(key, exc, message):
    x = graphnet.tensor(A)
    gkey = graphnet.tensor(key) if isinstance(key, np.ndarray) else key
    with pytest.raises(exc, match=message):
        x[gkey]
    with pytest.raises(exc, match=message):
        x[gkey] = 0.0


def test_setitem_value_shape_mismatch():
    x = graphnet.zeros(3, 4)
    with pytest.raises(RuntimeError, match=r"shape mismatch: value tensor of shape \[3\] cannot be broadcast to "
                                           r"indexing result of shape \[4\]"):
        x[0] = graphnet.ones(3)


def test_setitem_into_expanded_tensor_is_refused():
    x = graphnet.zeros(1).expand(3)
    with pytest.raises(RuntimeError, match="expanded tensor"):
        x[0] = 1.0


@pytest.mark.parametrize("key", [range(3), range(1, 3), (range(3), [0, 1, 2]), (slice(None), range(0, 4, 2)),
                                 range(0), (Ellipsis, range(4, 0, -2))])
def test_range_keys_index_as_integer_sequences(key):
    """pytorch/examples' forward-forward net labels with x[range(n), y], as PyTorch (and NumPy) allow."""
    np.testing.assert_array_equal(f64(grad=False)[key].numpy(), A[key])
    t = f64(grad=False)
    t[key] = -1.0
    want = A.copy()
    want[key] = -1.0
    np.testing.assert_array_equal(t.numpy(), want)
