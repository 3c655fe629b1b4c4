"""scatter / scatter_add / index_add (and their in-place forms) vs PyTorch: values, gradients, compiled runs, the
index bounds checks (eager and compiled) and every error message."""
import re

import numpy as np
import pytest

import graphnet
from graphnet.autograd import gradcheck
from graphnet.core.opdef import OpError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")
RNG = np.random.default_rng(3)
X = RNG.standard_normal((3, 4)).astype(np.float32)
IDX = np.array([[0, 1, 3], [2, 2, 0]])  # repeated entries along dim 1: scatter_add must add them up
SRC = RNG.standard_normal((2, 3)).astype(np.float32)


def _g(a, **kw):
    return graphnet.tensor(a, **kw)


def _t(a, **kw):
    return torch.tensor(a, **kw)


def _pair(fn_name, x, *args, **kw):
    """(graphnet result, torch result) of the same call on copies of the same NumPy operands."""
    conv = [(_g(a), _t(a)) if isinstance(a, np.ndarray) else (a, a) for a in args]
    ours = getattr(_g(x), fn_name)(*(c[0] for c in conv), **kw)
    ref = getattr(_t(x), fn_name)(*(c[1] for c in conv), **kw)
    return ours.numpy(), ref.numpy()


@pytest.mark.parametrize("reduce", [None, "add", "multiply"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_src_matches_torch(reduce, dim):
    idx = IDX if dim != 0 else np.array([[0, 1, 2, 0], [2, 1, 1, 0]])
    kw = {} if reduce is None else {"reduce": reduce}
    src = RNG.standard_normal((2, 5)).astype(np.float32)  # src may be larger than index
    if reduce is None:  # repeated indices overwrite in an unspecified order: use unique rows
        idx = np.array([[0, 1, 3], [2, 3, 0]]) if dim != 0 else np.array([[0, 1, 2, 0], [2, 0, 1, 1]])
    np.testing.assert_allclose(*_pair("scatter", X, dim, idx, src, **kw), rtol=1e-6)


@pytest.mark.parametrize("reduce", [None, "add", "multiply"])
def test_scatter_value_matches_torch(reduce):
    kw = {} if reduce is None else {"reduce": reduce}
    np.testing.assert_allclose(*_pair("scatter", X, 1, IDX, 2.5, **kw), rtol=1e-6)
    np.testing.assert_array_equal(graphnet.scatter(_g(X), 1, _g(IDX), value=2.5).numpy(),
                                  torch.scatter(_t(X), 1, _t(IDX), value=2.5).numpy())
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(*_pair("scatter", ints, 1, np.array([[0], [2]]), 1.5))  # value cast to int64


def test_scatter_add_and_index_add_match_torch():
    np.testing.assert_allclose(*_pair("scatter_add", X, 1, IDX, SRC), rtol=1e-6)
    np.testing.assert_allclose(*_pair("scatter_add", X, 0, np.array([[0, 2, 2, 1], [0, 0, 2, 1]]),
                                      RNG.standard_normal((2, 4)).astype(np.float32)), rtol=1e-6)
    source = RNG.standard_normal((3, 2)).astype(np.float32)
    np.testing.assert_allclose(*_pair("index_add", X, 1, np.array([3, 3]), source), rtol=1e-6)
    np.testing.assert_allclose(*_pair("index_add", X, -1, np.array([0, 2]), source, alpha=-2.0), rtol=1e-6)
    np.testing.assert_allclose(*_pair("index_add", X, 0, np.array([2, 0, 2, 1]),
                                      RNG.standard_normal((4, 4)).astype(np.float32)), rtol=1e-6)
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(*_pair("index_add", ints, 0, np.array([1]), np.ones((1, 3), np.int64), alpha=3))


def test_int32_index_and_zero_dim_tensors():
    i32 = IDX.astype(np.int32)
    np.testing.assert_allclose(*_pair("scatter_add", X, 1, i32, SRC), rtol=1e-6)
    np.testing.assert_allclose(*_pair("index_add", X, 1, np.array([1, 0], np.int32), SRC.T[:, :2]), rtol=1e-6)
    assert graphnet.zeros(()).scatter(0, _g(0), graphnet.ones(())).item() == 1.0
    assert graphnet.zeros(()).index_add(0, _g(0), _g(2.0)).item() == 2.0


def test_in_place_forms_write_self():
    ours, ref = _g(X.copy()), _t(X.copy())
    for x, mod in ((ours, graphnet), (ref, torch)):
        assert x.scatter_(1, mod.tensor([[0], [1], [2]]), 5.0) is x
        x.scatter_add_(0, mod.tensor([[1, 0, 0, 2]]), mod.ones(1, 4))
        x.index_add_(1, mod.tensor([3]), mod.ones(3, 1), alpha=0.5)
        x.scatter_(1, mod.tensor([[3]]), mod.full((1, 1), 7.0), reduce="multiply")
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)
    y = graphnet.zeros(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        y.index_add_(0, _g([0]), graphnet.ones(1, 2))


def _torch_grads(name, x, idx, src, g, **kw):
    a, s = _t(x, requires_grad=True), _t(src, requires_grad=True)
    getattr(a, name)(kw.pop("dim"), _t(idx), s, **kw).backward(_t(g))
    return a.grad.numpy(), s.grad.numpy()


def _our_grads(name, x, idx, src, g, **kw):
    a, s = _g(x, requires_grad=True), _g(src, requires_grad=True)
    getattr(a, name)(kw.pop("dim"), _g(idx), s, **kw).backward(_g(g))
    return a.grad.numpy(), s.grad.numpy()


@pytest.mark.parametrize("name, idx, src_shape, kw", [
    ("scatter", np.array([[0, 1, 3], [2, 3, 0]]), (2, 3), {"dim": 1}),
    ("scatter_add", IDX, (2, 3), {"dim": 1}),
    ("scatter_add", np.array([[0, 2, 2, 1], [1, 1, 0, 0]]), (2, 4), {"dim": 0}),
    ("index_add", np.array([3, 3]), (3, 2), {"dim": 1, "alpha": 2.0}),
    ("index_add", np.array([1, 0, 1]), (3, 4), {"dim": 0}),
])
def test_gradients_match_torch(name, idx, src_shape, kw):
    src = RNG.standard_normal(src_shape).astype(np.float32)
    g = RNG.standard_normal(X.shape).astype(np.float32)
    for ours, ref in zip(_our_grads(name, X, idx, src, g, **dict(kw)), _torch_grads(name, X, idx, src, g, **dict(kw))):
        np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_gradcheck_and_scatter_grad_zeroes_the_written_positions():
    f64 = dict(dtype=graphnet.float64, requires_grad=True)
    idx = _g([[0, 1, 3], [2, 3, 0]])
    assert gradcheck(lambda a, s: a.scatter(1, idx, s), [_g(X, **f64), _g(SRC, **f64)])
    assert gradcheck(lambda a, s: a.scatter_add(1, _g(IDX), s), [_g(X, **f64), _g(SRC, **f64)])
    assert gradcheck(lambda a, s: a.index_add(0, _g([2, 2]), s, alpha=3), [_g(X, **f64), _g(X[:2], **f64)])
    a = _g(X, requires_grad=True)
    a.scatter(1, idx, 0.0).sum().backward()
    expected = np.ones_like(X)
    for r, row in enumerate(idx.numpy()):
        expected[r, row] = 0.0
    np.testing.assert_array_equal(a.grad.numpy(), expected)
    s = _g(np.ones((2, 5), np.float32), requires_grad=True)  # a src larger than the index: zero grad beyond it
    graphnet.zeros(3, 4).scatter(1, idx, s).sum().backward()
    np.testing.assert_array_equal(s.grad.numpy(), np.pad(np.ones((2, 3)), ((0, 0), (0, 2))))


def test_scatter_multiply_has_no_derivative_like_torch():
    a = _g(X, requires_grad=True)
    out = a.scatter(1, _g(IDX), _g(SRC), reduce="multiply")
    with pytest.raises(RuntimeError, match="derivative for aten::scatter is not implemented"):
        out.sum().backward()


def test_compiled_matches_eager():
    def fn(a, i, s, j, v):
        return (a.scatter_add(1, i, s) * 2).index_add(0, j, v).scatter(1, i, 0.5).sum(0)

    args = (_g(X), _g(IDX), _g(SRC), _g([2, 0]), _g(X[:2]))
    compiled = graphnet.compile(fn)
    for _ in range(3):  # eager once, then traced and compiled
        np.testing.assert_allclose(compiled(*args).numpy(), fn(*args).numpy(), rtol=1e-6)
    assert compiled.stats()["variants"] == 1


@pytest.mark.parametrize("bad", [3, -1, 10 ** 8])
@pytest.mark.parametrize("name", ["scatter_add", "index_add"])
def test_a_compiled_step_refuses_a_bad_index_before_any_update(bad_index_step, name, bad):
    if name == "scatter_add":
        def loss(out, i):
            return graphnet.zeros(5, 3).scatter_add(1, i.unsqueeze(1), out[:, :1]).mul(out).sum()
    else:
        def loss(out, i):
            y = graphnet.zeros(3, 3).index_add(1, i, out.t())
            return (y * y).sum()
    case = bad_index_step(loss)
    case.check(_g([0, 1, 2, 2, 0]), _g([bad, 1, 2, 1, 0]), OpError,
               re.escape(f"index {bad} is out of bounds for dimension 1 with size 3"))
    (program,) = case.compiled._last.programs
    assert program.input_checks.checks  # the index is a Program input: checked before the first kernel


ERRORS = [
    (lambda: _g(X).scatter(1, _g([[0, 5]]), _g(SRC)), "index 5 is out of bounds for dimension 1 with size 4"),
    (lambda: _g(X).scatter(1, _g([[-1]]), 1.0), "index -1 is out of bounds for dimension 1 with size 4"),
    (lambda: _g(X).scatter(1, _g([[0.0]]), 1.0), "scatter(): Expected dtype int32/int64 for index"),
    (lambda: _g(X).scatter(1, _g([0]), _g(SRC)), "Index tensor must have the same number of dimensions as self tensor"),
    (lambda: _g(X).scatter(1, _g([[0]]), _g(np.ones((1, 1, 1), np.float32))),
     "Index tensor must have the same number of dimensions as src tensor"),
    (lambda: _g(X).scatter(1, _g([[0]]), graphnet.ones(())),
     "Index tensor must have the same number of dimensions as src tensor"),
    (lambda: _g(X).scatter(1, _g([[0, 1, 2]]), graphnet.ones(1, 2)),
     "Expected index [1, 3] to be no larger than self [3, 4] apart from dimension 1 and to be no larger size than "
     "src [1, 2]"),
    (lambda: _g(X).scatter(1, _g([[0]] * 4), 1.0), "Expected index [4, 1] to be no larger than self [3, 4] apart "
                                                   "from dimension 1"),
    (lambda: _g(X).scatter(1, _g([[0]]), graphnet.ones(1, 1, dtype=graphnet.float64)),
     "scatter(): Expected self.dtype to be equal to src.dtype"),
    (lambda: _g(X).scatter(1, _g([[0]]), 1.0, reduce="sum"), "reduce argument must be either add or multiply."),
    (lambda: _g(X).scatter(5, _g([[0]]), 1.0),
     "Dimension out of range (expected to be in range of [-2, 1], but got 5)"),
    (lambda: _g(X).scatter_add(1, _g([[4]]), graphnet.ones(1, 1)), "index 4 is out of bounds for dimension 1"),
    (lambda: _g(X).scatter_add(1, _g([[0]]), 2.0), "scatter_add(): argument 'src' (position 3) must be Tensor, not "
                                                   "float"),
    (lambda: _g(X).scatter_add(1, _g([[0]]), graphnet.ones(1, 1, dtype=graphnet.int64)),
     "scatter(): Expected self.dtype to be equal to src.dtype"),
    (lambda: _g(X).index_add(1, _g([5]), graphnet.ones(3, 1)), "index 5 is out of bounds for dimension 1 with size 4"),
    (lambda: _g(X).index_add(1, _g([-1]), graphnet.ones(3, 1)), "index -1 is out of bounds for dimension 1"),
    (lambda: _g(X).index_add(1, _g([0]), graphnet.ones(3, 2)),
     "index_add_(): Number of indices (1) should be equal to source.size(dim): (2), for dim: 1"),
    (lambda: _g(X).index_add(1, _g([[0]]), graphnet.ones(3, 1)),
     "index_add_(): Index is supposed to be a vector, but got dim: 2 with type: Long and size: [1, 1]"),
    (lambda: _g(X).index_add(1, _g([0.0]), graphnet.ones(3, 1)),
     "index_add_(): Expected dtype int32/int64 for index but got: Float"),
    (lambda: _g(X).index_add(1, _g([0]), graphnet.ones(3, 1, dtype=graphnet.float64)),
     "index_add_(): self (Float) and source (Double) must have the same scalar type"),
    (lambda: _g(X).index_add(1, _g([0]), graphnet.ones(4, 1)),
     "source tensor shape must match self tensor shape, excluding the specified dimension. Got self.shape = [3, 4] "
     "source.shape = [4, 1]"),
    (lambda: _g(X).index_add(1, _g([0]), graphnet.ones(3)),
     "index_add_(): Indexing dim 1 is out of bounds of the source tensor with dim 1"),
]


def _torch_type(message):
    """The exception class PyTorch raises with this message."""
    if "Dimension out of range" in message or "supposed to be a vector" in message:
        return IndexError
    return TypeError if "must be Tensor" in message else RuntimeError


@pytest.mark.parametrize("call, message", ERRORS)
def test_errors_are_worded_like_torch(call, message):
    with pytest.raises(Exception) as err:
        call()
    assert isinstance(err.value, _torch_type(message))
    assert message in str(err.value)


def test_scatter_takes_exactly_one_of_src_and_value():
    with pytest.raises(TypeError, match="exactly one of src"):
        _g(X).scatter(1, _g([[0]]))
    with pytest.raises(TypeError, match="exactly one of src"):
        _g(X).scatter(1, _g([[0]]), graphnet.ones(1, 1), value=2.0)
