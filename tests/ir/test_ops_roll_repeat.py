"""roll, repeat_interleave, unflatten / nn.Unflatten (composites) vs PyTorch: values, gradients, compiled, errors."""
import numpy as np
import pytest

import graphnet
from graphnet.autograd import gradcheck

torch = pytest.importorskip("torch")
A = np.arange(24.0).reshape(2, 3, 4)


def _both(fn):
    """fn(graphnet) and fn(torch) as NumPy arrays; the dtypes must agree too."""
    ours, ref = fn(graphnet), fn(torch)
    assert ours.dtype.name == str(ref.dtype).split(".")[1]
    return ours.numpy(), ref.numpy()


def f64(a):
    return graphnet.tensor(a, dtype=graphnet.float64, requires_grad=True)


@pytest.mark.parametrize("shifts, dims", [(1, None), (-5, None), (1, 0), (2, -1), (7, 1), ((1, -2), (0, 2)),
                                          ((3, 3), (2, 2)), (0, 1), ((4,), (2,))])
def test_roll_matches_torch(shifts, dims):
    np.testing.assert_array_equal(*_both(lambda m: m.roll(m.tensor(A), shifts, dims)))
    np.testing.assert_array_equal(*_both(lambda m: m.tensor(A).roll(shifts, dims)))


def test_roll_gradient_compiled_and_empty():
    assert gradcheck(lambda a: a.roll((1, -1), (0, 2)) * a, [f64(A)])
    assert gradcheck(lambda a: a.roll(5), [f64(A)])
    fn = graphnet.compile(lambda a: a.roll(1, 1) + a.roll(-2))
    x = graphnet.tensor(A, dtype=graphnet.float32)
    for _ in range(3):
        np.testing.assert_array_equal(fn(x).numpy(), torch.tensor(A).float().roll(1, 1).add(
            torch.tensor(A).float().roll(-2)).numpy())
    assert tuple(graphnet.zeros(0).roll(1).shape) == (0,)
    y = graphnet.tensor(A)
    assert y.roll(0, 0)._data is not y._data  # a copy even when nothing moves, like PyTorch


@pytest.mark.parametrize("shifts, dims, message", [
    (1, (0, 1), "shifts and dimensions must align. shifts: 1, dims:2"),
    ((1, 1), None, "shifts and dimensions must align. shifts: 2, dims:0"),
])
def test_roll_errors(shifts, dims, message):
    with pytest.raises(RuntimeError, match=message):
        graphnet.tensor(A).roll(shifts, dims)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-3, 2\], but got 5\)"):
        graphnet.tensor(A).roll(1, 5)


@pytest.mark.parametrize("repeats, dim", [(2, None), (3, 1), (0, 0), ([1, 0, 2], 1), ([2], -1), ([1, 3], 0),
                                          ([0, 0, 1, 2], 2)])
def test_repeat_interleave_matches_torch(repeats, dim):
    def call(m):
        r = m.tensor(repeats) if isinstance(repeats, list) else repeats
        return m.repeat_interleave(m.tensor(A), r, dim)

    np.testing.assert_array_equal(*_both(call))


def test_repeat_interleave_forms():
    np.testing.assert_array_equal(*_both(lambda m: m.repeat_interleave(m.tensor([1, 0, 3]))))
    np.testing.assert_array_equal(*_both(lambda m: m.tensor(5).repeat_interleave(3)))
    np.testing.assert_array_equal(*_both(lambda m: m.tensor(A).repeat_interleave(m.tensor(2), dim=0,
                                                                                 output_size=4)))
    np.testing.assert_array_equal(*_both(lambda m: m.tensor(A).repeat_interleave(m.tensor([2, 1], dtype=m.int32),
                                                                                 dim=0, output_size=3)))


def test_repeat_interleave_gradient_and_compiled():
    assert gradcheck(lambda a: a.repeat_interleave(2, dim=1), [f64(A)])
    assert gradcheck(lambda a: a.repeat_interleave(graphnet.tensor([2, 0, 1]), dim=1), [f64(A)])
    fn = graphnet.compile(lambda a: a.repeat_interleave(2, dim=-1) * 2)
    x = graphnet.tensor(A, dtype=graphnet.float32)
    for _ in range(3):
        np.testing.assert_array_equal(fn(x).numpy(), torch.tensor(A).float().repeat_interleave(2, dim=-1).numpy() * 2)


@pytest.mark.parametrize("call, kind, message", [
    (lambda x: x.repeat_interleave(graphnet.tensor([1, 2]), dim=1), RuntimeError,
     r"repeats must have the same size as input along dim, but got repeats.size\(0\) = 2 and input.size\(1\) = 3"),
    (lambda x: x.repeat_interleave(graphnet.tensor([1, -2]), dim=0), RuntimeError, "repeats can not be negative"),
    (lambda x: x.repeat_interleave(-1, dim=0), RuntimeError, "Repeats must be non-negative"),
    (lambda x: x.repeat_interleave(graphnet.tensor([[1, 2]]), dim=0), RuntimeError,
     "repeats must be 0-dim or 1-dim tensor"),
    (lambda x: x.repeat_interleave(graphnet.tensor([1.0, 2.0]), dim=0), NotImplementedError,
     "\"repeat_interleave_cpu\" not implemented for 'Float'"),
    (lambda x: x.repeat_interleave(2, dim=0, output_size=5), RuntimeError,
     "repeat_interleave: Invalid output_size, expected 4 but got 5"),
    (lambda x: x.repeat_interleave(graphnet.tensor([1, 2]), dim=0, output_size=5), RuntimeError,
     "allocated size does not match required size"),
    (lambda x: x.repeat_interleave(2, dim=3), IndexError, "Dimension out of range"),
])
def test_repeat_interleave_errors(call, kind, message):
    with pytest.raises(kind, match=message):
        call(graphnet.tensor(A))


@pytest.mark.parametrize("dim, sizes", [(0, (2, 1)), (-1, (2, -1)), (1, (-1,)), (2, (1, 4, 1))])
def test_unflatten_matches_torch(dim, sizes):
    np.testing.assert_array_equal(*_both(lambda m: m.tensor(A).unflatten(dim, sizes)))
    np.testing.assert_array_equal(*_both(lambda m: m.unflatten(m.tensor(A), dim, sizes)))
    np.testing.assert_array_equal(*_both(lambda m: m.nn.Unflatten(dim, sizes)(m.tensor(A))))


def test_unflatten_is_a_view_with_a_gradient():
    x = graphnet.tensor(A)
    assert x.unflatten(2, (2, 2))._data.base is not None
    assert gradcheck(lambda a: a.unflatten(1, (3, 1)), [f64(A)])
    assert repr(graphnet.nn.Unflatten(1, (3, 1))) == repr(torch.nn.Unflatten(1, (3, 1)))


@pytest.mark.parametrize("dim, sizes, kind, message", [
    (2, (3, -1), RuntimeError, r"unflatten: Provided sizes \[3, -1\] don't multiply up to the size of dim 2 \(4\) in "
                               "the input tensor"),
    (2, (3, 2), RuntimeError, r"unflatten: Provided sizes \[3, 2\] don't multiply up to the size of dim 2 \(4\)"),
    (0, (), RuntimeError, "unflatten: sizes must be non-empty"),
    (0, (-1, -1), RuntimeError, "only one dimension can be inferred"),
    (3, (1,), IndexError, "Dimension out of range"),
])
def test_unflatten_errors(dim, sizes, kind, message):
    with pytest.raises(kind, match=message):
        graphnet.tensor(A).unflatten(dim, sizes)
    with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dimensions"):
        graphnet.tensor(1.0).unflatten(0, (1,))
