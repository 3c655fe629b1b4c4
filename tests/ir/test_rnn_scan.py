"""rnn_scan, a recurrent layer direction as one op: the CPU kernels equal the NumPy reference in every mode and
direction, gradients pass float64 finite differences, a compiled LSTM's time loop is one kernel call whatever the
sequence length, and bad operands are refused naming them."""
import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
from graphnet.autograd import gradcheck
from graphnet.codegen.templates import recurrent as kernels
from graphnet.core.bind import bind
from graphnet.ir.ops import recurrent

CASES = [(mode, reverse) for mode in ("RNN_TANH", "RNN_RELU", "LSTM", "GRU") for reverse in (False, True)]


def _operands(rng, mode, steps=5, batch=3, hidden=4, dtype=np.float64):
    gates, width = recurrent.GATES[mode] * hidden, recurrent.state_width(mode, hidden)
    shapes = [((steps, batch, gates), 1.0), ((batch, width), 0.5), ((gates, hidden), 0.4), ((gates,), 0.1)]
    return [(rng.standard_normal(shape) * scale).astype(dtype) for shape, scale in shapes]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode,reverse", CASES)
def test_kernels_equal_the_numpy_reference(mode, reverse, dtype):
    rng = np.random.default_rng(0)
    gi, state0, w_hh, b_hh = _operands(rng, mode, dtype=dtype)
    code = recurrent.MODES[mode]
    states, acts = bind("rnn_scan", *map(torch.from_numpy, (gi, state0, w_hh, b_hh)),
                         mode=mode, reverse=reverse)
    want = [states.numpy(), acts.numpy()]
    got = [np.empty_like(w) for w in want]
    state0_before = state0.copy()
    kernels.rnn_scan(gi, state0, w_hh, b_hh, code, reverse, *got)
    np.testing.assert_array_equal(state0, state0_before)  # the kernel's running h is its own copy
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **tol)
    g_states = rng.standard_normal(want[0].shape).astype(dtype)
    shapes = [gi.shape, state0.shape, w_hh.shape, b_hh.shape]
    got_b, want_b = ([np.empty(s, dtype) for s in shapes] for _ in range(2))
    kernels.rnn_scan_backward(g_states, *want, state0, w_hh, code, reverse, *got_b)
    recurrent.scan_backward(g_states, *want, state0, w_hh, code, reverse, *want_b)
    for g, w in zip(got_b, want_b):
        np.testing.assert_allclose(g, w, **(dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else tol))


@pytest.mark.parametrize("mode,reverse", CASES)
def test_gradients_match_finite_differences(mode, reverse):
    rng = np.random.default_rng(1)
    inputs = [torch.from_numpy(a).requires_grad_(True) for a in _operands(rng, mode, steps=3, batch=2, hidden=3)]
    if mode == "RNN_RELU":  # keep the pre-activations away from ReLU's kink, where differences are not derivatives
        inputs[0] = torch.from_numpy(np.abs(inputs[0].detach().numpy()) + 0.5).requires_grad_(True)
    assert gradcheck(lambda *xs: bind("rnn_scan", *xs, mode=mode, reverse=reverse)[0], inputs)


def _lstm_step_count(steps):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2)
    compiled = torch.compile(lstm)
    out, (h, c) = compiled(torch.randn(steps, 2, 3))
    (out.sum() + h.sum() + c.sum()).backward()
    programs = compiled._last.programs
    return [len(p.steps) for p in programs], [sum(type(s).__name__ == "Template" and "scan" in s.fn.__name__
                                                  for s in p.steps) for p in programs]


def test_a_compiled_lstm_runs_its_time_loop_as_one_kernel_call():
    """The Program of a 2-layer LSTM has the same steps for 3 and 12 timesteps: the loop over time is inside the
    rnn_scan kernels (one per layer forward, one per layer backward), not unrolled into the graph."""
    short, long = _lstm_step_count(3), _lstm_step_count(12)
    assert short == long
    assert short[1] == [2, 2]


def test_bad_operands_are_refused_naming_them():
    gi, state0, w_hh, b_hh = (torch.zeros(*s) for s in ((5, 3, 16), (3, 8), (16, 4), (16,)))
    expected = r"rnn_scan \(LSTM\): expected gi \(T, B, 4\*H\).*got gi \(5, 3, 16\), state0 \(3, 5\)"
    with pytest.raises(RuntimeError, match=expected):
        bind("rnn_scan", gi, torch.zeros(3, 5), w_hh, b_hh, mode="LSTM", reverse=False)
    with pytest.raises(RuntimeError, match="must share one dtype"):
        bind("rnn_scan", gi, state0, w_hh.double(), b_hh, mode="LSTM", reverse=False)
    assert bind("rnn_scan", gi, state0, w_hh, b_hh, mode="LSTM", reverse=False)[0].shape == (5, 3, 8)
