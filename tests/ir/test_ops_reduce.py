"""Reductions: values vs NumPy (dims, keepdim, negative dims, dtypes), gradients vs finite differences, errors."""
import math

import numpy as np
import pytest

import graphnet
from graphnet.autograd import gradcheck

A = np.array([[1.0, 5.0, 3.0, 5.0], [4.0, -2.0, 6.0, 0.5], [0.0, 7.0, -1.0, 2.0]])


def f64(a=A, grad=True):
    return graphnet.tensor(a, dtype=graphnet.float64, requires_grad=grad)


@pytest.mark.parametrize("name,ref", [("sum", np.sum), ("mean", np.mean), ("prod", np.prod), ("amax", np.amax),
                                      ("amin", np.amin)])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_float_reductions_match_numpy(name, ref, dim, keepdim):
    x = graphnet.tensor(A.astype(np.float32))
    kwargs = {} if dim is None else {"dim": dim}
    out = getattr(x, name)(**kwargs, keepdim=keepdim)
    expected = ref(A.astype(np.float32), axis=dim, keepdims=keepdim)
    assert out.dtype is graphnet.float32
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    assert out.shape == expected.shape


@pytest.mark.parametrize("dims", [(0, 1), (-1, 0), (1,), ()])
def test_sum_mean_amax_over_several_dims(dims):
    a = np.arange(24.0).reshape(2, 3, 4) % 7
    x = graphnet.tensor(a)
    axes = dims or None
    np.testing.assert_allclose(x.sum(dims).numpy(), a.sum(axis=axes))
    np.testing.assert_allclose(graphnet.mean(x, dims, keepdim=True).numpy(), a.mean(axis=axes, keepdims=True))
    np.testing.assert_allclose(graphnet.amax(x, dims).numpy(), a.max(axis=axes))


@pytest.mark.parametrize("dtype,expected", [(graphnet.int32, graphnet.int64), (graphnet.bool, graphnet.int64),
                                            (graphnet.int64, graphnet.int64), (graphnet.uint8, graphnet.int64)])
def test_integer_sum_and_prod_accumulate_in_int64(dtype, expected):
    a = np.array([[1, 2, 0], [3, 1, 1]])
    x = graphnet.tensor(a).to(dtype)
    assert x.sum().dtype is expected and x.prod(1).dtype is expected
    np.testing.assert_array_equal(x.sum(0).numpy(), a.astype(dtype.np).sum(0, dtype=np.int64))
    np.testing.assert_array_equal(x.prod(1).numpy(), a.astype(dtype.np).prod(1, dtype=np.int64))


def test_amax_keeps_integer_dtype_and_mean_refuses_integers():
    x = graphnet.tensor([[3, 9], [4, 1]])
    assert x.amax(0).dtype is graphnet.int64
    np.testing.assert_array_equal(x.amin(1).numpy(), [3, 1])
    with pytest.raises(RuntimeError, match="mean\\(\\): could not infer output dtype.*Long"):
        x.mean()
    np.testing.assert_allclose(x.mean(dtype=graphnet.float64).numpy(), 4.25)


@pytest.mark.parametrize("name,ref", [("argmax", np.argmax), ("argmin", np.argmin)])
def test_argmax_argmin(name, ref):
    x = graphnet.tensor(A)
    assert getattr(x, name)().item() == ref(A)
    for dim in (0, 1, -2):
        out = getattr(graphnet, name)(x, dim)
        assert out.dtype is graphnet.int64
        np.testing.assert_array_equal(out.numpy(), ref(A, axis=dim))
        np.testing.assert_array_equal(getattr(x, name)(dim, keepdim=True).numpy(), ref(A, axis=dim, keepdims=True))
    assert getattr(x, name)(keepdim=True).shape == (1, 1)


@pytest.mark.parametrize("name,ref,arg", [("max", np.max, np.argmax), ("min", np.min, np.argmin)])
def test_max_min_with_dim_return_values_and_indices(name, ref, arg):
    x = graphnet.tensor(A)
    out = getattr(x, name)(1)
    assert isinstance(out, getattr(graphnet.return_types, name))
    values, indices = out
    np.testing.assert_allclose(values.numpy(), ref(A, axis=1))
    np.testing.assert_array_equal(indices.numpy(), arg(A, axis=1))
    kept = getattr(graphnet, name)(x, dim=0, keepdim=True)
    assert kept.values.shape == (1, 4) and kept.indices.shape == (1, 4)
    assert repr(out).startswith(f"graphnet.return_types.{name}(")
    np.testing.assert_allclose(getattr(x, name)().numpy(), ref(A))


def test_max_of_two_tensors_is_elementwise():
    a, b = graphnet.tensor([1.0, 5.0]), graphnet.tensor([3.0, 2.0])
    np.testing.assert_allclose(graphnet.max(a, b).numpy(), [3.0, 5.0])
    np.testing.assert_allclose(a.min(b).numpy(), [1.0, 2.0])


def test_max_dim_gradient_goes_to_the_selected_index_only_amax_splits_ties():
    x = f64(np.array([[2.0, 2.0, 1.0]]))
    x.max(1).values.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[1.0, 0.0, 0.0]])
    y = f64(np.array([[2.0, 2.0, 1.0]]))
    y.amax(1).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [[0.5, 0.5, 0.0]])


@pytest.mark.parametrize("fn", [
    lambda x: x.sum(1), lambda x: x.sum((0, 1), keepdim=True), lambda x: x.mean(0), lambda x: x.mean(),
    lambda x: x.amax(1), lambda x: x.amin(0, keepdim=True), lambda x: x.prod(1), lambda x: x.prod(),
    lambda x: x.max(0).values, lambda x: x.min(1, keepdim=True).values, lambda x: x.var(1), lambda x: x.std(),
    lambda x: x.norm(), lambda x: x.norm(1, dim=1), lambda x: x.norm(3, dim=0, keepdim=True),
    lambda x: x.norm(math.inf, 1), lambda x: graphnet.logsumexp(x, 1), lambda x: x.logsumexp((0, 1)),
    lambda x: x.softmax(1), lambda x: graphnet.log_softmax(x, 0), lambda x: graphnet.var(x, 0, correction=0),
])
def test_reduction_gradients(fn):
    assert gradcheck(fn, [f64()])


def test_prod_gradient_with_zeros():
    a = np.array([[1.0, 0.0, 3.0], [0.0, 0.0, 2.0], [1.5, 2.0, 3.0]])
    assert gradcheck(lambda x: x.prod(1), [f64(a)])
    assert gradcheck(lambda x: x.prod(), [f64(np.array([2.0, 0.0, 3.0]))])
    x = f64(np.array([2.0, 0.0, 3.0]))
    x.prod().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 6.0, 0.0])


def test_var_std_corrections():
    x = graphnet.tensor(A)
    np.testing.assert_allclose(x.var().numpy(), A.var(ddof=1))
    np.testing.assert_allclose(x.var(unbiased=False).numpy(), A.var())
    np.testing.assert_allclose(graphnet.var(x, 1, keepdim=True, correction=0).numpy(), A.var(1, keepdims=True))
    np.testing.assert_allclose(x.std(0).numpy(), A.std(0, ddof=1))
    np.testing.assert_allclose(graphnet.std(x, 1, False).numpy(), A.std(1))
    v, m = graphnet.var_mean(x, 1)
    np.testing.assert_allclose(v.numpy(), A.var(1, ddof=1))
    np.testing.assert_allclose(m.numpy(), A.mean(1))
    s, m = graphnet.std_mean(x, dim=0, keepdim=True)
    np.testing.assert_allclose(s.numpy(), A.std(0, ddof=1, keepdims=True))
    with pytest.raises(RuntimeError, match="std and var only support floating point"):
        graphnet.tensor([1, 2]).var()


@pytest.mark.parametrize("p,ref", [(2, lambda a, ax: np.sqrt((a * a).sum(ax))), ("fro", None),
                                   (1, lambda a, ax: np.abs(a).sum(ax)), (math.inf, lambda a, ax: np.abs(a).max(ax)),
                                   (-math.inf, lambda a, ax: np.abs(a).min(ax)), (0, lambda a, ax: (a != 0).sum(ax)),
                                   (3, lambda a, ax: (np.abs(a) ** 3).sum(ax) ** (1 / 3))])
def test_norm(p, ref):
    x = graphnet.tensor(A)
    ref = ref or (lambda a, ax: np.sqrt((a * a).sum(ax)))
    np.testing.assert_allclose(x.norm(p).numpy(), ref(A, None))
    np.testing.assert_allclose(graphnet.norm(x, p, dim=1).numpy(), ref(A, 1))
    with pytest.raises(RuntimeError, match="norm\\(\\): Expected a floating point"):
        graphnet.tensor([1, 2]).norm()


def test_all_any():
    a = np.array([[1, 0, 2], [3, 4, 5]])
    x = graphnet.tensor(a)
    assert x.all().item() is False and x.any().item() is True
    np.testing.assert_array_equal(x.all(1).numpy(), a.all(1))
    np.testing.assert_array_equal(graphnet.any(x == 0, 0, keepdim=True).numpy(), (a == 0).any(0, keepdims=True))
    assert x.all(1).dtype is graphnet.bool
    empty = graphnet.zeros(0)
    assert empty.all().item() is True and empty.any().item() is False


def test_logsumexp_softmax_are_stable_for_large_values():
    a = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]])
    x = graphnet.tensor(a, dtype=graphnet.float64)
    m = a.max(1, keepdims=True)
    lse = (m + np.log(np.exp(a - m).sum(1, keepdims=True)))
    np.testing.assert_allclose(graphnet.logsumexp(x, 1).numpy(), lse[:, 0])
    np.testing.assert_allclose(x.logsumexp(1, keepdim=True).numpy(), lse)
    np.testing.assert_allclose(x.softmax(1).numpy(), np.exp(a - lse))
    np.testing.assert_allclose(x.log_softmax(-1).numpy(), a - lse)
    ninf = graphnet.tensor([-math.inf, -math.inf])
    assert graphnet.logsumexp(ninf, 0).item() == -math.inf


def test_softmax_legacy_default_dim_and_dtype():
    x = graphnet.tensor(A)
    np.testing.assert_allclose(graphnet.softmax(x).sum(1).numpy(), np.ones(3), rtol=1e-6)
    assert graphnet.softmax(x, 0, dtype=graphnet.float64).dtype is graphnet.float64


def test_mean_prints_mean_backward():
    x = f64()
    assert x.mean().grad_fn.name() == "MeanBackward0"
    assert x.sum(0).grad_fn.name() == "SumBackward0"


@pytest.mark.parametrize("call", [lambda x: x.sum(2), lambda x: x.mean(-3), lambda x: x.amax((0, 5)),
                                  lambda x: x.argmax(2), lambda x: x.max(3), lambda x: x.softmax(2)])
def test_dim_out_of_range(call):
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got"):
        call(graphnet.tensor(A))


def test_extreme_of_empty_dim_is_an_error():
    """PyTorch's exception types: IndexError for an empty dim, and for argmax of an empty tensor over all dims."""
    with pytest.raises(IndexError, match=r"amax\(\): Expected reduction dim -1 to have non-zero size"):
        graphnet.zeros(2, 0).amax(-1)
    with pytest.raises(IndexError, match=r"argmax\(\): Expected reduction dim to be specified for input.numel"):
        graphnet.zeros(0).argmax()
    with pytest.raises(RuntimeError, match=r"amax\(\): Expected reduction dim to be specified .* Specify the"):
        graphnet.zeros(2, 0).amax()
    np.testing.assert_array_equal(graphnet.zeros(2, 0).sum(1).numpy(), [0.0, 0.0])


def test_zero_dim_tensor_reductions():
    x = graphnet.tensor(3.0)
    assert x.sum().item() == 3.0 and x.sum(0).item() == 3.0 and x.amax(-1).item() == 3.0
    assert x.argmax().item() == 0
    values, indices = x.max(0)
    assert values.item() == 3.0 and indices.item() == 0 and values.shape == ()


def test_out_argument():
    x = graphnet.tensor(A)
    out = graphnet.empty(4)
    assert graphnet.sum(x, 0, out=out) is out
    np.testing.assert_allclose(out.numpy(), A.sum(0))
