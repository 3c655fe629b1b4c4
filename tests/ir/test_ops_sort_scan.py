"""tril/triu, cumsum/cumprod, sort/argsort/topk and multinomial: values and gradients vs PyTorch (or float64
finite differences), compiled vs eager, the return types, and every error path with PyTorch's wording."""
import warnings

import numpy as np
import pytest

import graphnet
from graphnet.autograd import gradcheck

RNG = np.random.default_rng(11)
A = RNG.permutation(24).reshape(2, 3, 4).astype(np.float64) - 7.5  # distinct values: no ties to order


def f64(a=A, grad=True):
    return graphnet.tensor(a, dtype=graphnet.float64, requires_grad=grad)


def _torch():
    return pytest.importorskip("torch")


def _compiled(fn, *args):
    """fn compiled (the second call runs the compiled Program: a first miss runs eagerly), no fallback allowed."""
    f = graphnet.compile(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(*args)
        out = f(*args)
    return f, out


def _ops(f):
    return {n.op for n in f.graph("optimized").nodes}


def _grad_vs_torch(fn, a, weights_seed=0):
    """d/dx sum(fn(x) * w) from graphnet and from torch, for a float64 input `a`."""
    torch = _torch()
    x, tx = f64(a), torch.tensor(a, requires_grad=True)
    out, tout = fn(graphnet, x), fn(torch, tx)
    w = np.random.default_rng(weights_seed).standard_normal(tuple(tout.shape))
    (out * graphnet.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---- tril / triu ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tril", "triu"])
@pytest.mark.parametrize("diagonal", [0, 1, -1, 5, -5])
@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 3), (0, 2)])
def test_triangles_match_torch(name, diagonal, shape):
    torch = _torch()
    a = RNG.standard_normal(shape)
    got = getattr(graphnet, name)(graphnet.tensor(a), diagonal)
    np.testing.assert_array_equal(got.numpy(), getattr(torch, name)(torch.tensor(a), diagonal).numpy())
    _grad_vs_torch(lambda lib, x: getattr(lib, name)(x, diagonal=diagonal), a)


@pytest.mark.parametrize("dtype", [graphnet.bool, graphnet.int32, graphnet.float32])
def test_triangles_keep_dtype_and_work_in_place(dtype):
    torch = _torch()
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype.np)
    x = graphnet.tensor(a)
    assert graphnet.triu(x).dtype is dtype
    np.testing.assert_array_equal(x.tril(-1).numpy(), torch.tril(torch.tensor(a), -1).numpy())
    y = graphnet.tensor(a)
    assert y.triu_(1) is y
    np.testing.assert_array_equal(y.numpy(), np.triu(a, 1))
    out = graphnet.empty(3, 4, dtype=dtype)
    assert graphnet.tril(x, out=out) is out and np.array_equal(out.numpy(), np.tril(a))


@pytest.mark.parametrize("name", ["tril", "triu"])
def test_triangles_need_two_dims(name):
    with pytest.raises(RuntimeError, match=f"{name}: input tensor must have at least 2 dimensions"):
        getattr(graphnet, name)(graphnet.ones(3))


# ---- cumsum / cumprod -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_scans_match_torch_values_and_gradients(name, dim):
    _grad_vs_torch(lambda lib, x: getattr(lib, name)(x / 4, dim), A)


@pytest.mark.parametrize("zeros", [[(0, 1, 2)], [(0, 1, 0)], [(1, 2, 3)], [(0, 1, 1), (0, 1, 3)],
                                   [(1, 0, 0), (1, 0, 2), (1, 0, 3)]])
def test_cumprod_gradient_is_exact_with_zeros(zeros):
    a = A / 4
    for z in zeros:
        a[z] = 0.0
    _grad_vs_torch(lambda lib, x: lib.cumprod(x, -1), a)
    assert gradcheck(lambda x: graphnet.cumprod(x, -1), [f64(a)])


def test_cumprod_double_backward_with_a_zero_matches_torch():
    torch = _torch()
    a = np.array([[0.5, 0.0, 2.0, -1.5], [1.2, 0.7, -0.3, 2.0]])
    x, tx = f64(a), torch.tensor(a, requires_grad=True)
    (g,) = graphnet.autograd.grad((graphnet.cumprod(x, 1) ** 2).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad((torch.cumprod(tx, 1) ** 2).sum(), tx, create_graph=True)
    np.testing.assert_allclose(graphnet.autograd.grad(g.sum(), x)[0].numpy(),
                               torch.autograd.grad(tg.sum(), tx)[0].numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [graphnet.int32, graphnet.uint8, graphnet.bool, graphnet.int64])
def test_integer_scans_accumulate_in_int64(dtype):
    torch = _torch()
    a = np.array([[1, 2, 0, 3], [3, 1, 1, 2]]).astype(dtype.np)
    for name in ("cumsum", "cumprod"):
        got = getattr(graphnet, name)(graphnet.tensor(a), 1)
        want = getattr(torch, name)(torch.tensor(a), 1)
        assert got.dtype is graphnet.int64 and str(want.dtype) == "torch.int64"
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_scan_dtype_argument_in_place_and_zero_dim():
    x = graphnet.tensor([[1, 2], [3, 4]], dtype=graphnet.int32)
    got = graphnet.cumsum(x, 0, dtype=graphnet.float64)
    assert got.dtype is graphnet.float64 and got.tolist() == [[1.0, 2.0], [4.0, 6.0]]
    y = graphnet.tensor([1.0, 2.0, 3.0])
    assert y.cumprod_(0) is y and y.tolist() == [1.0, 2.0, 6.0]
    assert graphnet.cumsum(graphnet.tensor(2.5), 0).item() == 2.5 and graphnet.tensor(3).cumprod(-1).dtype is \
        graphnet.int64


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_scan_dim_out_of_range(name):
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"):
        getattr(graphnet, name)(graphnet.ones(2, 3), 2)


# ---- sort / argsort / topk ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_and_argsort_match_torch(dim, descending):
    torch = _torch()
    values, indices = graphnet.sort(graphnet.tensor(A), dim, descending)
    want = torch.sort(torch.tensor(A), dim, descending)
    np.testing.assert_array_equal(values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
    assert indices.dtype is graphnet.int64
    arg = graphnet.tensor(A).argsort(dim=dim, descending=descending)
    np.testing.assert_array_equal(arg.numpy(), torch.argsort(torch.tensor(A), dim, descending).numpy())
    _grad_vs_torch(lambda lib, x: lib.sort(x, dim, descending).values, A)


@pytest.mark.parametrize("descending", [False, True])
def test_stable_sort_keeps_ties_in_input_order_and_puts_nan_last(descending):
    torch = _torch()
    a = np.array([2.0, 1.0, np.nan, 2.0, 1.0, 0.0, 2.0])
    got = graphnet.sort(graphnet.tensor(a), descending=descending, stable=True)
    want = torch.sort(torch.tensor(a), descending=descending, stable=True)
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


def test_sort_return_type_and_small_inputs():
    out = graphnet.tensor([3.0, 1.0, 2.0]).sort()
    assert isinstance(out, graphnet.return_types.sort) and isinstance(out, tuple)
    values, indices = out
    assert out.values is values and out.indices is indices and indices.tolist() == [1, 2, 0]
    assert repr(out).startswith("graphnet.return_types.sort(\nvalues=tensor([1., 2., 3.])")
    zero_d = graphnet.sort(graphnet.tensor(4.0))
    assert zero_d.values.shape == () and zero_d.indices.item() == 0
    assert graphnet.sort(graphnet.ones(2, 0), 1).values.shape == (2, 0)
    assert graphnet.tensor([True, False, True]).sort().indices.tolist() == [1, 0, 2]


@pytest.mark.parametrize("k,dim,largest", [(2, -1, True), (1, 0, False), (3, 1, True), (4, -1, False),
                                           (0, 2, True)])
def test_topk_matches_torch(k, dim, largest):
    torch = _torch()
    got = graphnet.tensor(A).topk(k, dim, largest)
    want = torch.topk(torch.tensor(A), k, dim, largest)
    assert isinstance(got, graphnet.return_types.topk)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    _grad_vs_torch(lambda lib, x: lib.topk(x, k, dim=dim, largest=largest).values, A)


def test_topk_of_integers_and_zero_dim():
    values, indices = graphnet.topk(graphnet.tensor([1, 3, 2]), 2)
    assert values.tolist() == [3, 2] and indices.tolist() == [1, 2] and values.dtype is graphnet.int64
    top = graphnet.topk(graphnet.tensor(5.0), 1)
    assert top.values.shape == () and top.values.item() == 5.0


def test_sorted_values_gradient_gradcheck():
    assert gradcheck(lambda x: graphnet.sort(x, 1, descending=True).values, [f64()])
    assert gradcheck(lambda x: graphnet.topk(x, 2, 0).values, [f64()])


@pytest.mark.parametrize("k", [5, -1])
def test_topk_k_out_of_range(k):
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        graphnet.topk(graphnet.ones(3, 4), k)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        graphnet.topk(graphnet.ones(3, 4), 4, dim=0)


@pytest.mark.parametrize("fn", [lambda x: x.sort(2), lambda x: x.argsort(-3), lambda x: x.topk(1, 3)])
def test_sort_dim_out_of_range(fn):
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\]"):
        fn(graphnet.ones(3, 4))


# ---- multinomial ----------------------------------------------------------------------------------------------
P = np.array([0.1, 0.0, 0.3, 0.6, 0.0])


def test_multinomial_with_replacement_frequencies():
    graphnet.manual_seed(1234)
    draws = graphnet.multinomial(graphnet.tensor(P * 7.0), 20000, replacement=True)  # unnormalised weights
    assert draws.dtype is graphnet.int64 and draws.shape == (20000,)
    freq = np.bincount(draws.numpy(), minlength=5) / 20000
    np.testing.assert_allclose(freq, P, atol=0.015)
    assert freq[1] == 0 and freq[4] == 0


def test_multinomial_rows_without_replacement():
    weights = graphnet.tensor([[1.0, 2.0, 0.0, 4.0], [0.0, 0.0, 5.0, 1.0]])
    graphnet.manual_seed(0)
    firsts = []
    for _ in range(2000):
        out = graphnet.multinomial(weights, 3)
        assert out.shape == (2, 3)
        rows = out.numpy()
        assert all(len(set(r)) == 3 for r in rows)
        assert set(rows[0]) == {0, 1, 3} and rows[1, 2] in (0, 1)  # zero-weight categories only fill in last
        firsts.append(rows[0, 0])
    np.testing.assert_allclose(np.bincount(firsts, minlength=4) / 2000, [1 / 7, 2 / 7, 0, 4 / 7], atol=0.03)


def test_multinomial_replays_under_manual_seed_and_generator():
    p = graphnet.tensor([1.0, 2.0, 3.0, 4.0])
    graphnet.manual_seed(5)
    a = [graphnet.multinomial(p, 3).tolist(), p.multinomial(6, True).tolist()]
    graphnet.manual_seed(5)
    assert [graphnet.multinomial(p, 3).tolist(), p.multinomial(6, True).tolist()] == a
    g1, g2 = graphnet.Generator().manual_seed(9), graphnet.Generator().manual_seed(9)
    assert graphnet.multinomial(p, 4, generator=g1).tolist() == graphnet.multinomial(p, 4, generator=g2).tolist()


@pytest.mark.parametrize("probs,n,replacement,message", [
    ([1.0, -1.0, 1.0], 1, False, "probability tensor contains either `inf`, `nan` or element < 0"),
    ([1.0, np.nan], 1, True, "probability tensor contains either `inf`, `nan` or element < 0"),
    ([1.0, np.inf], 1, True, "probability tensor contains either `inf`, `nan` or element < 0"),
    ([0.0, 0.0, 0.0], 1, False, r"invalid multinomial distribution \(sum of probabilities <= 0\)"),
    ([[1.0, 1.0], [0.0, 0.0]], 1, True, r"invalid multinomial distribution \(sum of probabilities <= 0\)"),
    ([1.0, 2.0], 3, False, r"cannot sample n_sample > prob_dist.size\(-1\) samples without replacement"),
    ([1.0, 2.0], 0, True, "cannot sample n_sample <= 0 samples"),
    ([[[1.0]]], 1, True, "prob_dist must be 1 or 2 dim"),
    (1.0, 1, True, "prob_dist must be 1 or 2 dim"),
    ([1, 2], 1, True, "multinomial only supports floating-point dtypes for input, got: Long"),
])
def test_multinomial_errors_match_torch(probs, n, replacement, message):
    torch = _torch()
    with pytest.raises(RuntimeError, match=message):
        graphnet.multinomial(graphnet.tensor(probs), n, replacement)
    with pytest.raises(RuntimeError, match=message):
        torch.multinomial(torch.tensor(probs), n, replacement)


# ---- compiled vs eager ----------------------------------------------------------------------------------------
def _mix(x):
    v, i = graphnet.topk(x, 2, dim=1)
    return (graphnet.cumprod(x / 8, -1).sum() + graphnet.cumsum(x, 0).sum() + graphnet.tril(x[0], -1).sum()
            + graphnet.sort(x, 2, descending=True).values[..., 0].sum() + v.sum() + i.sum())


def test_compiled_forward_matches_eager():
    x = graphnet.tensor(A)
    f, out = _compiled(_mix, x)
    assert {"cumsum", "cumprod", "argsort", "gather"} <= _ops(f)
    np.testing.assert_allclose(out.numpy(), _mix(x).numpy(), rtol=1e-12)


def test_compiled_training_step_gradients_match_eager():
    x = f64()
    _mix(x).backward()
    want = x.grad.numpy().copy()

    def step(t):
        loss = _mix(t)
        loss.backward()
        return loss

    x.grad = None
    f, _ = _compiled(step, x)
    x.grad = None
    f(x)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)
    assert "gather_backward" in _ops(f)


@pytest.mark.parametrize("replacement", [True, False])
def test_compiled_multinomial_draws_the_eager_stream(replacement):
    p = graphnet.tensor([[1.0, 2.0, 3.0, 0.5], [0.0, 1.0, 1.0, 1.0]])
    fn = graphnet.compile(lambda w: graphnet.multinomial(w, 3, replacement))
    graphnet.manual_seed(21)
    got = [fn(p).tolist() for _ in range(3)]
    graphnet.manual_seed(21)
    assert got == [graphnet.multinomial(p, 3, replacement).tolist() for _ in range(3)]
    assert len({str(g) for g in got}) > 1  # fresh draws per call
