"""Dropout (and bernoulli / rand_like) through the explicit RNG state: reproducible eagerly, traced as a 'state'
input with a write-back, and compiled to draw a fresh mask per call that replays exactly after manual_seed."""
import warnings

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
from graphnet.autograd import gradcheck
from graphnet.passes.cse import cse

GEN = torch.default_generator


@pytest.fixture(autouse=True)
def _kernel_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GRAPHNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


def _mask_reference(seed, offset, shape, p):
    """Keep-mask times 1/(1-p) from the documented stream: Philox(key=seed), offset in counter word 1."""
    u = np.random.Generator(np.random.Philox(key=seed, counter=[0, offset, 0, 0])).random(shape).astype(np.float32)
    return (u >= np.float32(p)) / np.float32(1 - p)


# ---- eager ------------------------------------------------------------------------------------------------------
def test_eager_dropout_matches_the_documented_stream_and_advances_the_offset():
    torch.manual_seed(21)
    x = torch.randn(6, 7)
    assert GEN.get_offset() == 0
    y = F.dropout(x, 0.3)
    np.testing.assert_allclose(y.numpy(), x.numpy() * _mask_reference(21, 0, (6, 7), 0.3), rtol=1e-6)
    assert GEN.get_offset() == 42
    z = F.dropout(x, 0.3)
    np.testing.assert_allclose(z.numpy(), x.numpy() * _mask_reference(21, 42, (6, 7), 0.3), rtol=1e-6)


def test_eager_dropout_is_reproducible_under_manual_seed_and_differs_between_calls():
    x = torch.ones(40, 50)
    torch.manual_seed(3)
    a, b = F.dropout(x, 0.5).numpy(), F.dropout(x, 0.5).numpy()
    torch.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)
    assert not np.array_equal(a, b)
    GEN.set_offset(0)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)


def test_dropout_keeps_about_one_minus_p_and_scales_the_kept():
    y = F.dropout(torch.ones(300, 300), 0.2).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.8, rtol=1e-6)
    assert abs(kept.mean() - 0.8) < 0.01


def test_dropout_edge_cases_and_errors():
    x = torch.randn(5, 4)
    assert F.dropout(x, 0.5, training=False) is x and F.dropout(x, 0.0) is x
    offset = GEN.get_offset()
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros((5, 4), np.float32))
    assert GEN.get_offset() == offset
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        F.dropout(x, 1.5)
    with pytest.raises(RuntimeError, match="dropout: expected a floating-point input, got int64"):
        F.dropout(torch.arange(4), 0.5)
    with pytest.raises(ValueError, match="set_offset: offset must be non-negative, got -1"):
        GEN.set_offset(-1)


def test_inplace_dropout_writes_into_its_input():
    torch.manual_seed(8)
    x = torch.randn(10, 10)
    ref = x.numpy() * _mask_reference(8, 0, (10, 10), 0.4)
    assert F.dropout(x, 0.4, inplace=True) is x
    np.testing.assert_allclose(x.numpy(), ref, rtol=1e-6)


def test_dropout_gradient_is_the_scaled_mask_by_gradcheck_with_a_fixed_state():
    def fixed(t):
        GEN.set_offset(0)
        return F.dropout(t, 0.4)

    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    assert gradcheck(fixed, (x,))
    fixed(x).sum().backward()
    seed = GEN.state_tensor().tolist()[0]
    u = np.random.Generator(np.random.Philox(key=seed, counter=[0, 0, 0, 0])).random((5, 6))
    np.testing.assert_allclose(x.grad.numpy(), (u >= 0.4) / 0.6)


# ---- traced -----------------------------------------------------------------------------------------------------
def _two_dropouts(x):
    return F.dropout(x, 0.5) + F.dropout(x, 0.5)


def test_trace_takes_the_generator_state_as_input_and_writes_the_advance_back():
    traced = torch.trace(lambda x: F.dropout(x, 0.25), torch.randn(3, 4))
    state = [v for v in traced.graph.inputs if v.role == "state"]
    assert [v.name for v in state] == ["rng_state"] and traced.state["rng_state"] is GEN.state_tensor()
    (wb,) = traced.graph.writebacks
    assert wb.target is state[0] and wb.kind == "data" and wb.value.producer.op == "rng_advance"
    assert wb.value.producer.attrs["n"] == 12
    assert [n.op for n in traced.graph.nodes if n.op in ("rand_uniform", "ge", "cast", "mul")] == \
        ["rand_uniform", "ge", "cast", "mul", "mul"]


def test_traced_dropout_runs_like_eager_and_advances_the_generator():
    x = torch.randn(3, 4)
    traced = torch.trace(lambda t: F.dropout(t, 0.5), x)
    torch.manual_seed(4)
    a, b = traced(x).numpy(), traced(x).numpy()
    assert GEN.get_offset() == 24 and not np.array_equal(a, b)
    torch.manual_seed(4)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)


def test_cse_keeps_two_dropout_masks_apart():
    traced = torch.trace(_two_dropouts, torch.ones(20, 20))
    g = cse(traced.graph)
    draws = [n for n in g.nodes if n.op == "rand_uniform"]
    assert len(draws) == 2 and draws[0].inputs[0] is not draws[1].inputs[0]
    torch.manual_seed(0)
    out = traced(torch.ones(20, 20)).numpy()
    assert set(np.unique(out)) == {0.0, 2.0, 4.0}


def test_rand_like_and_bernoulli_are_drawn_afresh_by_a_traced_graph():
    traced = torch.trace(lambda x: torch.rand_like(x) + torch.bernoulli(x * 0 + 0.5), torch.zeros(50))
    a, b = traced(torch.zeros(50)).numpy(), traced(torch.zeros(50)).numpy()
    assert not np.array_equal(a, b) and a.min() >= 0 and a.max() < 2


# ---- compiled ---------------------------------------------------------------------------------------------------
def _net():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5))


def test_compiled_dropout_fresh_masks_reproducible_and_equal_to_eager():
    net, x = _net(), torch.randn(4, 8)
    cm = torch.compile(net)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("error")  # a fallback to eager would warn
        torch.manual_seed(1)
        a, b = cm(x).numpy(), cm(x).numpy()
        torch.manual_seed(1)
        np.testing.assert_array_equal(cm(x).numpy(), a)
        np.testing.assert_array_equal(cm(x).numpy(), b)
        torch.manual_seed(1)
        np.testing.assert_allclose(net(x).numpy(), a, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(a, b)
    assert "rand_uniform" in [n.op for n in cm.graph("optimized").nodes]


def test_compiled_eval_mode_is_the_identity_and_draws_nothing():
    net, x = _net(), torch.randn(4, 8)
    cm = torch.compile(net.eval())
    offset = GEN.get_offset()
    with torch.no_grad():
        out = cm(x).numpy()
        np.testing.assert_allclose(out, net[1](net[0](x)).numpy(), rtol=1e-5, atol=1e-6)
    assert GEN.get_offset() == offset
    assert "rand_uniform" not in [n.op for n in cm.graph("optimized").nodes]


def test_compiled_dropout_backward_uses_the_forward_mask():
    net = _net()
    x = torch.randn(4, 8, requires_grad=True)
    torch.manual_seed(6)
    net(x).sum().backward()
    want = x.grad.numpy().copy()
    x.grad = None
    cm = torch.compile(net)
    torch.manual_seed(6)
    cm(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-5, atol=1e-6)


def test_generators_have_independent_streams():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x = torch.full((30,), 0.5)
    a = torch.bernoulli(x, generator=g1).numpy()
    np.testing.assert_array_equal(torch.bernoulli(x, generator=g2).numpy(), a)
    assert g1.get_offset() == 30 and not np.array_equal(torch.bernoulli(x, generator=g1).numpy(), a)
    with pytest.raises(RuntimeError, match=r"bernoulli: expected all probabilities to be in \[0, 1\]"):
        torch.bernoulli(x * 3)


def test_compiled_train_step_with_dropout_matches_eager_steps():
    def run(compiled):
        torch.manual_seed(2)
        net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        x, y = torch.randn(4, 8), torch.randint(0, 3, (4,))

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss

        fn = torch.compile(step) if compiled else step
        return [fn(x, y).item() for _ in range(3)], GEN.get_offset()

    (eager, off_e), (comp, off_c) = run(False), run(True)
    np.testing.assert_allclose(comp, eager, rtol=1e-5)
    assert off_e == off_c == 3 * 64
