"""rnn_scan: a whole recurrent layer direction (Elman tanh/ReLU, LSTM or GRU) over every timestep as one op, and
its backward-through-time as another.

The input projection gi = x W_ih^T + b_ih of every timestep is one GEMM before the op; the op runs the recurrence
h_t = cell(gi_t, h_{t-1} W_hh^T + b_hh) with PyTorch's gate orders (LSTM i, f, g, o; GRU r, z, n). The state is
h (width H), or [h, c] (width 2H) for an LSTM; `acts` keeps the gate activations the backward reads (LSTM i, f, g, o;
GRU r, z, n and h W_hn^T + b_hn; Elman h). `scan_forward` / `scan_backward` are written in the NumPy subset Numba
compiles, so eager mode runs them as NumPy and codegen compiles the same functions into the CPU kernel loop.
"""
import numpy as np

from ...core.bind import op
from ...core.opdef import OpDef, OpError, register
from .util import fmt_shape

MODES = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}
_TANH, _RELU, _LSTM, _GRU = range(4)
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_ACTS = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 4}


def scan_forward(gi, state0, w_hh, b_hh, mode, reverse, states, acts):
    """Fill states (T, B, S) and acts (T, B, A) from gi (T, B, G*H), state0 (B, S), w_hh (G*H, H), b_hh (G*H,);
    with `reverse` the time loop runs from T-1 down to 0 (a bidirectional layer's second direction)."""
    steps, hidden = gi.shape[0], w_hh.shape[1]
    one = np.ones(1, gi.dtype)[0]
    w_t = np.ascontiguousarray(w_hh.T)
    h = np.ascontiguousarray(state0[:, :hidden])
    c = np.ascontiguousarray(state0[:, hidden:])
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        gh = np.dot(h, w_t) + b_hh
        x = gi[t]
        if mode == _LSTM:
            i = one / (one + np.exp(-(x[:, :hidden] + gh[:, :hidden])))
            f = one / (one + np.exp(-(x[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])))
            g = np.tanh(x[:, 2 * hidden:3 * hidden] + gh[:, 2 * hidden:3 * hidden])
            o = one / (one + np.exp(-(x[:, 3 * hidden:] + gh[:, 3 * hidden:])))
            c = f * c + i * g
            h = o * np.tanh(c)
            acts[t, :, :hidden], acts[t, :, hidden:2 * hidden] = i, f
            acts[t, :, 2 * hidden:3 * hidden], acts[t, :, 3 * hidden:] = g, o
            states[t, :, hidden:] = c
        elif mode == _GRU:
            r = one / (one + np.exp(-(x[:, :hidden] + gh[:, :hidden])))
            z = one / (one + np.exp(-(x[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])))
            ghn = gh[:, 2 * hidden:]
            n = np.tanh(x[:, 2 * hidden:] + r * ghn)
            h = n + z * (h - n)
            acts[t, :, :hidden], acts[t, :, hidden:2 * hidden] = r, z
            acts[t, :, 2 * hidden:3 * hidden], acts[t, :, 3 * hidden:] = n, ghn
        else:
            pre = x + gh
            h = np.tanh(pre) if mode == _TANH else np.maximum(pre, one - one)
            acts[t] = h
        states[t, :, :hidden] = h


def scan_backward(g_states, states, acts, state0, w_hh, mode, reverse, g_gi, g_state0, g_w_hh, g_b_hh):
    """The adjoint of scan_forward: from the states' gradient g_states (T, B, S) fill the gradients of gi, state0,
    w_hh and b_hh, walking the timesteps in the opposite order."""
    steps, batch, hidden = g_states.shape[0], g_states.shape[1], w_hh.shape[1]
    one = np.ones(1, g_gi.dtype)[0]
    g_gh = np.empty_like(g_gi) if mode == _GRU else g_gi  # the gradient of h W_hh^T + b_hh (GRU: r scales its n part)
    h_prev_all = np.empty((steps, batch, hidden), g_gi.dtype)
    dh = np.zeros((batch, hidden), g_gi.dtype)
    dc = np.zeros((batch, hidden), g_gi.dtype)
    for s in range(steps):
        t = s if reverse else steps - 1 - s
        prev = t + 1 if reverse else t - 1
        prior = states[prev] if 0 <= prev < steps else state0
        h_prev_all[t] = prior[:, :hidden]
        dh = dh + g_states[t, :, :hidden]
        a = acts[t]
        if mode == _LSTM:
            i, f, g, o = a[:, :hidden], a[:, hidden:2 * hidden], a[:, 2 * hidden:3 * hidden], a[:, 3 * hidden:]
            tc = np.tanh(states[t, :, hidden:])
            dc = dc + g_states[t, :, hidden:] + dh * o * (one - tc * tc)
            g_gi[t, :, :hidden] = dc * g * i * (one - i)
            g_gi[t, :, hidden:2 * hidden] = dc * prior[:, hidden:] * f * (one - f)
            g_gi[t, :, 2 * hidden:3 * hidden] = dc * i * (one - g * g)
            g_gi[t, :, 3 * hidden:] = dh * tc * o * (one - o)
            dc = dc * f
            dh = np.dot(g_gi[t], w_hh)
        elif mode == _GRU:
            r, z, n, ghn = a[:, :hidden], a[:, hidden:2 * hidden], a[:, 2 * hidden:3 * hidden], a[:, 3 * hidden:]
            dpn = dh * (one - z) * (one - n * n)
            g_gi[t, :, :hidden] = dpn * ghn * r * (one - r)
            g_gi[t, :, hidden:2 * hidden] = dh * (prior[:, :hidden] - n) * z * (one - z)
            g_gi[t, :, 2 * hidden:] = dpn
            g_gh[t, :, :2 * hidden] = g_gi[t, :, :2 * hidden]
            g_gh[t, :, 2 * hidden:] = dpn * r
            dh = np.dot(g_gh[t], w_hh) + dh * z
        else:
            g_gi[t] = dh * (one - a * a) if mode == _TANH else dh * (a > 0)
            dh = np.dot(g_gi[t], w_hh)
    g_state0[:, :hidden] = dh
    g_state0[:, hidden:] = dc[:, :g_state0.shape[1] - hidden]
    rows = g_gh.reshape(steps * batch, g_gh.shape[2])
    g_w_hh[:] = np.dot(np.ascontiguousarray(rows.T), h_prev_all.reshape(steps * batch, hidden))
    g_b_hh[:] = rows.sum(axis=0)


def state_width(mode, hidden):
    return 2 * hidden if mode == "LSTM" else hidden


def _infer(gi, state0, w_hh, b_hh, mode, reverse):
    hidden = w_hh.shape[-1] if w_hh.ndim == 2 else 0
    width, gates = state_width(mode, hidden), GATES[mode] * hidden
    if (gi.ndim != 3 or w_hh.ndim != 2 or w_hh.shape[0] != gates or tuple(b_hh.shape) != (gates,)
            or gi.shape[2] != gates or tuple(state0.shape) != (gi.shape[1], width)):
        state = "2*H" if mode == "LSTM" else "H"
        raise OpError(f"rnn_scan ({mode}): expected gi (T, B, {GATES[mode]}*H), state0 (B, {state}), "
                      f"w_hh ({GATES[mode]}*H, H), b_hh ({GATES[mode]}*H,); got gi {fmt_shape(gi.shape)}, state0 "
                      f"{fmt_shape(state0.shape)}, w_hh {fmt_shape(w_hh.shape)}, b_hh {fmt_shape(b_hh.shape)}")
    if len({gi.dtype, state0.dtype, w_hh.dtype, b_hh.dtype}) != 1:
        raise OpError(f"rnn_scan ({mode}): gi, state0, w_hh and b_hh must share one dtype, got {gi.dtype}, "
                      f"{state0.dtype}, {w_hh.dtype}, {b_hh.dtype}")
    steps, batch = gi.shape[:2]
    return gi.with_(shape=(steps, batch, width)), gi.with_(shape=(steps, batch, _ACTS[mode] * hidden))


def _impl(gi, state0, w_hh, b_hh, mode, reverse):
    steps, batch, hidden = gi.shape[0], gi.shape[1], w_hh.shape[1]
    states = np.empty((steps, batch, state_width(mode, hidden)), gi.dtype)
    acts = np.empty((steps, batch, _ACTS[mode] * hidden), gi.dtype)
    scan_forward(gi, state0, w_hh, b_hh, MODES[mode], reverse, states, acts)
    return states, acts


def _grad(c, g_states, g_acts):
    if g_acts is not None:
        raise RuntimeError("rnn_scan: its gate activations are saved for the backward and take no gradient")
    if g_states is None:
        g_states = op.mul(c.outputs[0], 0.0)
    return op.rnn_scan_backward(g_states, c.outputs[0], c.outputs[1], c.inputs[1], c.inputs[2], **c.attrs)


def _backward_infer(g_states, states, acts, state0, w_hh, mode, reverse):
    steps, batch, gates = g_states.shape[0], g_states.shape[1], w_hh.shape[0]
    return (g_states.with_(shape=(steps, batch, gates)), state0, w_hh, w_hh.with_(shape=(gates,)))


def _backward_impl(g_states, states, acts, state0, w_hh, mode, reverse):
    steps, batch, gates = g_states.shape[0], g_states.shape[1], w_hh.shape[0]
    outs = (np.empty((steps, batch, gates), w_hh.dtype), np.empty_like(state0), np.empty_like(w_hh),
            np.empty(gates, w_hh.dtype))
    scan_backward(g_states, states, acts, state0, w_hh, MODES[mode], reverse, *outs)
    return outs


register(OpDef("rnn_scan", "opaque", _infer, _impl, _grad, save_inputs=(1, 2), save_outputs=(0, 1),
               kernel="rnn_scan", n_outputs=2))
register(OpDef("rnn_scan_backward", "opaque", _backward_infer, _backward_impl, kernel="rnn_scan_backward",
               n_outputs=4))
