"""Counter-based random ops: values are a pure function of (seed, offset), uniform/normal in law, never merged or
folded by the passes, and their errors name the op and the fix."""
import numpy as np
import pytest
from scipy import stats

import graphnet as torch
from graphnet.core.bind import bind
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.ir.ops import OpError, get_op
from graphnet.passes.cse import cse
from graphnet.passes.fold import fold


def _state(seed, offset=0):
    return torch.tensor([seed, offset], dtype=torch.int64)


def _uniform(state, shape=(1000,), dtype=torch.float32):
    return bind("rand_uniform", state, shape=shape, dtype=dtype).numpy()


def test_uniform_is_philox_keyed_by_seed_with_offset_in_the_second_counter_word():
    want = np.random.Generator(np.random.Philox(key=7, counter=[0, 3, 0, 0])).random((4, 5))
    got = bind("rand_uniform", _state(7, 3), shape=(4, 5), dtype=torch.float64).numpy()
    np.testing.assert_array_equal(got, want)


def test_uniform_is_deterministic_and_offsets_and_seeds_give_different_streams():
    a = _uniform(_state(11, 0))
    np.testing.assert_array_equal(a, _uniform(_state(11, 0)))
    for other in (_uniform(_state(11, 1)), _uniform(_state(12, 0))):
        assert not np.any(a == other)
    assert _uniform(_state(11, 0), (10,)).tolist() == a[:10].tolist()


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_uniform_is_in_unit_interval_and_uniform_in_law(dtype):
    u = _uniform(_state(5, 2), (20000,), dtype)
    assert u.dtype == dtype.np and u.min() >= 0 and u.max() < 1
    assert stats.kstest(u.astype(np.float64), "uniform").pvalue > 1e-3
    assert abs(u.astype(np.float64).var() - 1 / 12) < 0.005


def test_normal_draws_are_standard_normal_in_law():
    z = bind("rand_normal", _state(3, 9), shape=(200, 100), dtype=torch.float64).numpy()
    assert z.shape == (200, 100)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3


def test_rng_advance_moves_the_offset_only_and_leaves_its_input_alone():
    s = _state(-5, 40)
    out = bind("rng_advance", s, n=17)
    assert out.tolist() == [-5, 57] and s.tolist() == [-5, 40]


def test_negative_seeds_wrap_like_uint64():
    want = np.random.Generator(np.random.Philox(key=2**64 - 1, counter=0)).random(6)
    np.testing.assert_array_equal(bind("rand_uniform", _state(-1), shape=(6,), dtype=torch.float64).numpy(), want)


@pytest.mark.parametrize("state, attrs, match", [
    (torch.zeros(2), {"shape": (3,), "dtype": torch.float32}, r"rand_uniform: expected the generator state to be an "
                                                              r"int64 tensor of shape \(2,\).*float32 of shape \(2,\)"),
    (torch.zeros(3, dtype=torch.int64), {"shape": (3,), "dtype": torch.float32}, r"got int64 of shape \(3,\)"),
    (torch.zeros(2, dtype=torch.int64), {"shape": (3,), "dtype": torch.int32},
     "rand_uniform: expected a floating-point dtype, got int32"),
    (torch.zeros(2, dtype=torch.int64), {"shape": (-1,), "dtype": torch.float32},
     r"rand_uniform: shape must be non-negative integers, got \(-1,\)"),
])
def test_draw_errors_name_the_op_and_the_problem(state, attrs, match):
    with pytest.raises(OpError, match=match):
        bind("rand_uniform", state, **attrs)


def test_rng_advance_rejects_a_negative_count():
    with pytest.raises(OpError, match="rng_advance: n must be a non-negative integer, got -3"):
        bind("rng_advance", torch.zeros(2, dtype=torch.int64), n=-3)


def test_random_ops_have_no_gradient_and_are_creation_ops():
    for name in ("rand_uniform", "rand_normal"):
        assert get_op(name).kind == "creation" and get_op(name).grad is None


def _two_draws_graph():
    """Two draws from the same constant state: identical inputs and attrs, yet not the same computation."""
    g = Graph()
    state = g.add_constant(np.array([1, 0], np.int64))
    a = g.call("rand_uniform", state, shape=(8,), dtype=torch.float32)
    b = g.call("rand_uniform", state, shape=(8,), dtype=torch.float32)
    g.set_outputs([g.call("add", a, b)])
    return g


def test_cse_and_fold_leave_random_draws_alone():
    g = fold(cse(_two_draws_graph()))
    assert [n.op for n in g.nodes].count("rand_uniform") == 2
    assert g.meta["fold"]["folded"] == 0


def test_infer_keeps_the_state_device_and_the_requested_dtype():
    t = get_op("rand_uniform").infer(TensorType((2,), torch.int64), shape=(3, 4), dtype=torch.float64)
    assert t == TensorType((3, 4), torch.float64)
