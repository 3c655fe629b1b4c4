"""Joining, splitting, rearranging (cat, stack, split, chunk, unbind, narrow, flip, repeat, pad): values, grads."""
import numpy as np
import pytest

import graphnet
from graphnet.autograd import gradcheck
from graphnet.frontend.api_movement import pad

A = np.arange(12.0).reshape(3, 4)
B = -np.arange(6.0).reshape(3, 2)


def f64(a, grad=True):
    return graphnet.tensor(a, dtype=graphnet.float64, requires_grad=grad)


@pytest.mark.parametrize("name", ["cat", "concat", "concatenate"])
def test_cat_matches_numpy(name):
    out = getattr(graphnet, name)([graphnet.tensor(A), graphnet.tensor(B)], dim=-1)
    np.testing.assert_array_equal(out.numpy(), np.concatenate([A, B], axis=-1))
    np.testing.assert_array_equal(graphnet.cat((graphnet.tensor(A), graphnet.tensor(A)), 0).numpy(),
                                  np.concatenate([A, A]))


def test_cat_promotes_dtypes_and_skips_legacy_empty_tensors():
    out = graphnet.cat([graphnet.tensor([1, 2]), graphnet.tensor([0.5]), graphnet.zeros(0)])
    assert out.dtype is graphnet.float32
    np.testing.assert_allclose(out.numpy(), [1.0, 2.0, 0.5])
    out = graphnet.cat([graphnet.zeros(0), graphnet.tensor(A)], 1)
    np.testing.assert_array_equal(out.numpy(), A)


def test_cat_gradients_and_out():
    assert gradcheck(lambda a, b: graphnet.cat([a, b, a], 1), [f64(A), f64(B)])
    out = graphnet.empty(3, 6)
    assert graphnet.cat([graphnet.tensor(A), graphnet.tensor(B)], 1, out=out) is out
    np.testing.assert_array_equal(out.numpy(), np.concatenate([A, B], 1))


def test_cat_errors():
    with pytest.raises(RuntimeError, match="cat\\(\\): Sizes of tensors must match except in dimension 1. Expected "
                                           "size 3 but got size 4 for tensor number 1 in the list."):
        graphnet.cat([graphnet.zeros(3, 2), graphnet.zeros(4, 2)], 1)
    with pytest.raises(RuntimeError, match="Tensors must have same number of dimensions: got 2 and 1"):
        graphnet.cat([graphnet.zeros(3, 2), graphnet.zeros(3)])
    with pytest.raises(RuntimeError, match="expected a non-empty list of Tensors"):
        graphnet.cat([])
    with pytest.raises(TypeError, match="must be a tuple or list of Tensors"):
        graphnet.cat(graphnet.zeros(2))
    with pytest.raises(IndexError, match="Dimension out of range"):
        graphnet.cat([graphnet.zeros(2, 2)], 2)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim):
    out = graphnet.stack([graphnet.tensor(A), graphnet.tensor(A + 1)], dim)
    np.testing.assert_array_equal(out.numpy(), np.stack([A, A + 1], axis=dim))
    assert gradcheck(lambda a, b: graphnet.stack([a, b], dim), [f64(A), f64(A)])


def test_stack_shape_mismatch():
    with pytest.raises(RuntimeError, match=r"stack expects each tensor to be equal size, but got \[3, 4\] at entry 0 "
                                           r"and \[3, 2\] at entry 1"):
        graphnet.stack([graphnet.tensor(A), graphnet.tensor(B)])


def test_split_chunk_unbind_narrow_are_views():
    x = graphnet.tensor(A)
    parts = x.split(3, dim=1)
    assert [tuple(p.shape) for p in parts] == [(3, 3), (3, 1)]
    np.testing.assert_array_equal(parts[1].numpy(), A[:, 3:])
    sized = graphnet.split(x, [1, 2], 0)
    np.testing.assert_array_equal(sized[1].numpy(), A[1:])
    chunks = x.chunk(2, 0)
    assert [tuple(c.shape) for c in chunks] == [(2, 4), (1, 4)]
    rows = x.unbind(1)
    assert len(rows) == 4
    np.testing.assert_array_equal(rows[2].numpy(), A[:, 2])
    narrowed = graphnet.narrow(x, 1, -3, 2)
    np.testing.assert_array_equal(narrowed.numpy(), A[:, 1:3])
    for v in (parts[0], sized[1], chunks[0], rows[0], narrowed):
        assert np.shares_memory(v.numpy(), x.numpy())
        assert v._version is x._version


def test_split_errors():
    x = graphnet.tensor(A)
    with pytest.raises(RuntimeError, match="split_with_sizes expects split_sizes to sum exactly to 3"):
        x.split([1, 1])
    with pytest.raises(RuntimeError, match="chunk expects `chunks` to be greater than 0"):
        x.chunk(0)
    with pytest.raises(RuntimeError, match="narrow\\(\\): start \\(3\\) \\+ length \\(2\\) exceeds dimension size"):
        x.narrow(1, 3, 2)


def test_split_and_unbind_gradients():
    assert gradcheck(lambda a: a.split([1, 3], 1)[1] * 2, [f64(A)])
    assert gradcheck(lambda a: graphnet.unbind(a, 0)[2], [f64(A)])
    assert gradcheck(lambda a: a.chunk(3, 1)[0], [f64(A)])


@pytest.mark.parametrize("dims", [(0,), (1,), (0, 1), (-1,)])
def test_flip(dims):
    x = graphnet.tensor(A)
    out = x.flip(*dims)
    np.testing.assert_array_equal(out.numpy(), np.flip(A, dims))
    assert not np.shares_memory(out.numpy(), x.numpy())
    assert gradcheck(lambda a: graphnet.flip(a, dims), [f64(A)])


@pytest.mark.parametrize("reps", [(2, 1), (1, 3), (2, 2, 1), (2, 1, 3)])
def test_repeat_and_tile(reps):
    x = graphnet.tensor(A)
    np.testing.assert_array_equal(x.repeat(*reps).numpy(), np.tile(A, reps))
    np.testing.assert_array_equal(graphnet.tile(x, reps).numpy(), np.tile(A, reps))
    assert gradcheck(lambda a: a.repeat(reps), [f64(A)])


def test_repeat_needs_enough_dims():
    with pytest.raises(RuntimeError, match="Number of dimensions of repeat dims can not be smaller"):
        graphnet.tensor(A).repeat(2)


@pytest.mark.parametrize("widths", [(1, 2), (0, 1, 2, 0), (1, 1, 1, 1)])
def test_constant_pad(widths):
    x = graphnet.tensor(A)
    np_widths = [(0, 0)] * (2 - len(widths) // 2) + [tuple(widths[i:i + 2]) for i in range(0, len(widths), 2)][::-1]
    np.testing.assert_array_equal(pad(x, widths, value=-1.0).numpy(), np.pad(A, np_widths, constant_values=-1.0))
    np.testing.assert_array_equal(graphnet.constant_pad_nd(x, widths).numpy(), np.pad(A, np_widths))
    assert gradcheck(lambda a: pad(a, widths, value=2.0), [f64(A)])


def test_pad_errors():
    x = graphnet.tensor(A)
    with pytest.raises(RuntimeError, match="pad: negative padding is not supported"):
        pad(x, (-1, 1))
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        pad(x, (1, 1, 1))
    with pytest.raises(NotImplementedError, match="mode='reflect' is not supported"):
        pad(x, (1, 1), mode="reflect")


def test_pad_integer_tensor_keeps_dtype():
    out = pad(graphnet.tensor([[1, 2]]), (1, 0), value=7)
    assert out.dtype is graphnet.int64
    np.testing.assert_array_equal(out.numpy(), [[7, 1, 2]])


def test_broadcast_tensors():
    a, b = graphnet.broadcast_tensors(graphnet.zeros(3, 1), graphnet.ones(4))
    assert a.shape == (3, 4) and b.shape == (3, 4)
