"""Device kernels for advanced indexing, gather, index_put, argmax/argmin and the counter-based RNG ops vs the CPU."""
import re

import numpy as np
import pytest

import graphnet
import graphnet.nn.functional as F
from graphnet.core.bind import bind
from graphnet.core.opdef import OpError
from graphnet.runtime import cuda_backend

pytestmark = pytest.mark.cuda
RNG = np.random.default_rng(7)
OURS = ("index", "index_backward", "index_put", "gather", "gather_backward", "argmax", "argmin", "rand_uniform",
        "rand_normal", "rng_advance")
ALL = (("slice", None, None, None),)


@pytest.fixture(autouse=True)
def _no_host_fallback():
    """Every op here must run its device kernel: the host-fallback counters may not move."""
    before = {k: cuda_backend.FALLBACKS.get(k, 0) for k in OURS}
    yield
    assert {k: cuda_backend.FALLBACKS.get(k, 0) for k in OURS} == before


def _t(a):
    return graphnet.tensor(np.asarray(a))


def _both(name, arrays, **attrs):
    """(device result, CPU result) of op `name` on the same host arrays."""
    gpu = bind(name, *(_t(a).cuda() for a in arrays), **attrs)
    cpu = bind(name, *(_t(a) for a in arrays), **attrs)
    assert gpu.is_cuda and gpu.dtype is cpu.dtype
    return gpu.cpu().numpy(), cpu.numpy()


def _idx(*rows):
    return np.array(rows, np.int64)


# (x shape, basic index spec, packed advanced index (k, *B), advanced dims of the basic view)
INDEX_CASES = [
    ((7,), (), _idx([0, -1, 3, 3, 6]), (0,)),
    ((5, 3), ALL, _idx([[-1, 0], [2, 2]]), (1,)),
    ((5, 3), (), _idx([4, -5, 1]), (0,)),
    ((3, 4, 5), (), _idx([[1, -1], [0, 2]], [[4, 0], [-1, 3]]), (1, 2)),
    ((3, 4, 5), (), _idx([[0, 2, -1]], [[4, 4, 1]]).reshape(2, 1, 3), (0, 2)),
    ((3, 4, 5), (("int", -1), ("slice", 1, None, 2)), _idx([4, -5, 0, 4]), (1,)),
    ((3, 4, 5), (("none",), ("ellipsis",), ("slice", 0, 3, 1)), _idx([2, 0]), (1,)),
    ((3, 4, 5), (("slice", 1, None, None),), np.zeros((0,), np.int64), ()),
]


@pytest.mark.parametrize("shape, spec, idx, dims", INDEX_CASES)
def test_index_and_its_scatter_add_adjoint(shape, spec, idx, dims):
    x = RNG.standard_normal(shape).astype(np.float32)
    got, ref = _both("index", [x, idx], index=spec, dims=dims)
    np.testing.assert_array_equal(got, ref)
    g = RNG.standard_normal(ref.shape)
    got, ref = _both("index_backward", [g, idx], shape=shape, index=spec, dims=dims)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
@pytest.mark.parametrize("value_shape", [(), (4,), (3, 1)])
def test_index_put_assign_and_accumulate(dtype, value_shape):
    x = (RNG.standard_normal((5, 4)) * 10).astype(dtype)
    v = (RNG.standard_normal(value_shape) * 10).astype(dtype)
    unique, repeated = _idx([3, -1, 0]), _idx([1, 1, -4])
    got, ref = _both("index_put", [x, unique, v], index=(), dims=(0,), accumulate=False)
    np.testing.assert_array_equal(got, ref)
    got, ref = _both("index_put", [x, repeated, v], index=(), dims=(0,), accumulate=True)
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_index_put_bool_assign_and_advanced_columns():
    mask = RNG.random((4, 6)) > 0.5
    got, ref = _both("index_put", [mask, _idx([[0, -1], [2, 2]]), np.array(True)], index=ALL, dims=(1,))
    np.testing.assert_array_equal(got, ref)
    x = RNG.standard_normal((2, 3, 4))
    got, ref = _both("index_put", [x, _idx([0, 0], [3, 3]), np.ones(3)], index=ALL, dims=(0, 2), accumulate=True)
    np.testing.assert_allclose(got, ref, rtol=1e-12)


@pytest.mark.parametrize("shape, idx_shape, dim", [((6,), (9,), 0), ((4, 5), (3, 5), 0), ((4, 5), (4, 7), 1),
                                                   ((4, 5), (2, 3), -1), ((2, 3, 5), (2, 2, 4), 1),
                                                   ((2, 3, 5), (1, 3, 3), -3)])
def test_gather_and_gather_backward(shape, idx_shape, dim):
    x = RNG.standard_normal(shape)
    n = shape[dim]
    idx = RNG.integers(0, n, idx_shape).astype(np.int64)  # repeats whenever the index is longer
    got, ref = _both("gather", [x, idx], dim=dim)
    np.testing.assert_array_equal(got, ref)
    got, ref = _both("gather_backward", [RNG.standard_normal(idx_shape), idx], shape=shape, dim=dim)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def _grads(fn, *arrays):
    """Gradients of sum(fn(*leaves) * weights) on the CPU and on the device."""
    out = []
    for dev in ("cpu", "cuda"):
        leaves = [_t(a).to(dev).requires_grad_() for a in arrays]
        y = fn(*leaves)
        (y * _t(np.linspace(-1, 1, y.numel()).reshape(y.shape)).to(dev)).sum().backward()
        out.append([leaf.grad.cpu().numpy() for leaf in leaves])
    return out


@pytest.mark.parametrize("fn", [
    lambda x, v: x[graphnet.tensor([2, 0, 2, -1]).to(x.device)] * v.sum(),
    lambda x, v: x[:, graphnet.tensor([[1, 1], [0, -1]]).to(x.device)].sum(0) + v[:, :2],
    lambda x, v: graphnet.gather(x, 1, graphnet.tensor([[0, 0, 2], [1, 2, 2], [2, 0, 0]]).to(x.device)) * v[0],
    lambda x, v: x.index_put((graphnet.tensor([1, -1]).to(x.device),), v[0], accumulate=True),
    lambda x, v: x.index_put((graphnet.tensor([0, 2]).to(x.device),), v[1]),
])
def test_autograd_through_indexing_matches_cpu(fn):
    x, v = RNG.standard_normal((3, 3)), RNG.standard_normal((2, 3))
    cpu, gpu = _grads(fn, x, v)
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("shape, dim, keepdim", [((9,), 0, False), ((4, 9), 1, True), ((4, 9), 0, False),
                                                 ((3, 4, 5), -1, False), ((3, 4, 5), 1, True), ((3, 4, 5), None, False),
                                                 ((2, 3), None, True), ((3, 100), 1, False), ((), None, False)])
def test_argmax_argmin_first_extreme_with_ties(name, shape, dim, keepdim):
    x = RNG.integers(-2, 3, shape).astype(np.float32)  # few distinct values: ties everywhere
    for arr in (x, x.astype(np.int64)):
        got, ref = _both(name, [arr], dim=dim, keepdim=keepdim)
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_nan_counts_as_the_extreme(name):
    x = RNG.standard_normal((5, 80)).astype(np.float32)
    x[1, [3, 40]] = np.nan
    x[3, 70] = np.nan
    x[4, :] = np.nan
    for dim in (1, None):
        got, ref = _both(name, [x], dim=dim)
        np.testing.assert_array_equal(got, ref)
    assert _both(name, [x], dim=1)[0][[1, 3, 4]].tolist() == [3, 70, 0]


def _cpu_error(name, arrays, attrs):
    with pytest.raises(Exception) as info:
        bind(name, *(_t(a) for a in arrays), **attrs)
    return info.value


@pytest.mark.parametrize("name, arrays, attrs", [
    ("index", [np.zeros((2, 3)), _idx([0, 5])], dict(index=(), dims=(0,))),
    ("index", [np.zeros((2, 3)), _idx([0, -4])], dict(index=ALL, dims=(1,))),
    ("index_backward", [np.zeros(2), _idx([0, 2])], dict(shape=(2,), index=(), dims=(0,))),
    ("index_put", [np.zeros(3), _idx([-4]), np.ones(())], dict(index=(), dims=(0,), accumulate=True)),
    ("gather", [np.zeros((2, 3)), _idx([0, 3])], dict(dim=1)),
    ("gather_backward", [np.zeros((1, 2)), _idx([0, -3])], dict(shape=(2, 2), dim=0)),
])
def test_out_of_range_index_raises_the_cpu_error(name, arrays, attrs):
    expected = _cpu_error(name, arrays, attrs)
    assert isinstance(expected, (IndexError, OpError))
    with pytest.raises(type(expected), match="out of bounds") as info:
        bind(name, *(_t(a).cuda() for a in arrays), **attrs)
    assert str(info.value) == str(expected)
    got, ref = _both("gather", [np.arange(4.0), _idx(3, 0)], dim=0)  # the error flag was cleared
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("bad", [3, -1, 10 ** 8])
def test_a_compiled_device_step_refuses_a_bad_gather_index_before_any_update(bad_index_step, bad):
    case = bad_index_step(lambda out, i: graphnet.gather(out, 1, i.unsqueeze(1)).sum(), "cuda")
    case.check(graphnet.tensor([0, 1, 2, 2, 0]), graphnet.tensor([0, bad, 2, 1, 0]), OpError,
               re.escape(f"gather(): index {bad} is out of bounds for dimension 1 with size 3"))


# ---- random -------------------------------------------------------------------------------------------------------
def _state(seed, offset):
    return _t(np.array([seed, offset], np.int64)).cuda()


def _draw(name, seed, offset, n, dtype=graphnet.float32):
    out = bind(name, _state(seed, offset), shape=(n,), dtype=dtype)
    assert out.is_cuda and out.dtype is dtype
    return out.cpu().numpy()


def test_philox4x32_known_answer():
    """Seed 0, offset 0: the first float32 uniforms are the top 24 bits of Philox4x32-10(ctr 0, key 0) (Random123)."""
    words = np.array([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8], np.uint64)
    np.testing.assert_array_equal(_draw("rand_uniform", 0, 0, 4), (words >> 8).astype(np.float64) / 2.0 ** 24)


@pytest.mark.parametrize("name", ["rand_uniform", "rand_normal"])
@pytest.mark.parametrize("dtype", [graphnet.float32, graphnet.float64])
def test_rng_is_a_pure_function_of_the_state(name, dtype):
    a = _draw(name, 11, 5, 23, dtype)
    np.testing.assert_array_equal(a, _draw(name, 11, 5, 23, dtype))
    assert not np.any(a == _draw(name, 11, 6, 23, dtype))
    assert not np.any(a == _draw(name, 12, 5, 23, dtype))
    np.testing.assert_array_equal(np.concatenate([a, _draw(name, 11, 28, 9, dtype)]), _draw(name, 11, 5, 32, dtype))


@pytest.mark.parametrize("dtype", [graphnet.float32, graphnet.float64])
def test_uniform_and_normal_statistics(dtype):
    n = 4099
    u, z = _draw("rand_uniform", 2024, 3, n, dtype), _draw("rand_normal", 2024, 3, n, dtype)
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.02 and abs(u.var() - 1 / 12) < 0.006
    assert abs(z.mean()) < 0.07 and abs(z.var() - 1.0) < 0.1
    assert abs(np.mean(z > 0) - 0.5) < 0.03 and abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.03


def test_rng_advance_moves_the_offset_like_the_cpu_op():
    got, ref = _both("rng_advance", [np.array([-3, 17], np.int64)], n=1000)
    np.testing.assert_array_equal(got, ref)
    assert got.tolist() == [-3, 1017]


def test_manual_seed_reproduces_cuda_rand_and_dropout():
    runs = []
    for _ in range(2):
        graphnet.manual_seed(123)
        r = graphnet.rand(3, 5, device="cuda")
        d = F.dropout(graphnet.ones(4, 6).cuda(), p=0.5)
        runs.append((r.cpu().numpy(), d.cpu().numpy(), r.is_cuda and d.is_cuda))
    (r0, d0, on0), (r1, d1, on1) = runs
    assert on0 and on1
    np.testing.assert_array_equal(r0, r1)
    np.testing.assert_array_equal(d0, d1)
    assert set(np.unique(d0)) <= {0.0, 2.0}


def test_cuda_dropout_draws_its_mask_on_the_device(monkeypatch):
    from graphnet.runtime.cuda_kernels import random as cuda_random

    calls = []
    draw = cuda_random.HANDLERS["rand_uniform"]
    monkeypatch.setitem(cuda_backend.HANDLERS, "rand_uniform", lambda *a: calls.append(1) or draw(*a))
    graphnet.manual_seed(7)
    state = graphnet.default_generator.state_tensor().numpy().copy()
    d = F.dropout(graphnet.ones(4, 6).cuda(), p=0.5)
    assert calls and d.is_cuda and set(np.unique(d.cpu().numpy())) <= {0.0, 2.0}
    after = graphnet.default_generator.state_tensor().numpy()
    assert after[0] == state[0] and after[1] == state[1] + 24  # the CPU-held state advanced by the 24 samples
