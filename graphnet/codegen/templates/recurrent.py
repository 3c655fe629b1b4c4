"""The recurrent-layer kernels: rnn_scan's whole time loop, and its backward-through-time, as one call each.

Per timestep one GEMM (h W_hh^T, or the adjoint's dgates W_hh) through the BLAS Numba binds, then one fused loop
over (batch, hidden) per mode for the gate math, with fastmath's vectorisable sigmoid/tanh and constants in the
arrays' dtype so float32 stays float32 and LLVM vectorises it. Nothing is allocated per step (the op's NumPy impl,
the reference these are tested against, builds about twenty temporaries per step). Gate orders, layouts and modes
are ir.ops.recurrent's.
"""
import numpy as np
from numba import njit

from ..fastmath import fast_sigmoid, fast_tanh

_TANH, _RELU, _LSTM, _GRU = range(4)


@njit(cache=True, nogil=True)
def _lstm(gi, gh, b_hh, states, acts, t, prev, state0, h):
    """One LSTM step's gates, c and h (prev < 0: c_{t-1} is state0's)."""
    batch, hidden = h.shape
    for b in range(batch):
        for j in range(hidden):
            c_prev = state0[b, hidden + j] if prev < 0 else states[prev, b, hidden + j]
            i = fast_sigmoid(gi[t, b, j] + gh[b, j] + b_hh[j])
            f = fast_sigmoid(gi[t, b, hidden + j] + gh[b, hidden + j] + b_hh[hidden + j])
            g = fast_tanh(gi[t, b, 2 * hidden + j] + gh[b, 2 * hidden + j] + b_hh[2 * hidden + j])
            o = fast_sigmoid(gi[t, b, 3 * hidden + j] + gh[b, 3 * hidden + j] + b_hh[3 * hidden + j])
            c = f * c_prev + i * g
            h[b, j] = states[t, b, j] = o * fast_tanh(c)
            states[t, b, hidden + j] = c
            acts[t, b, j], acts[t, b, hidden + j], acts[t, b, 2 * hidden + j], acts[t, b, 3 * hidden + j] = i, f, g, o


@njit(cache=True, nogil=True)
def _gru(gi, gh, b_hh, states, acts, t, h):
    batch, hidden = h.shape
    for b in range(batch):
        for j in range(hidden):
            r = fast_sigmoid(gi[t, b, j] + gh[b, j] + b_hh[j])
            z = fast_sigmoid(gi[t, b, hidden + j] + gh[b, hidden + j] + b_hh[hidden + j])
            ghn = gh[b, 2 * hidden + j] + b_hh[2 * hidden + j]
            n = fast_tanh(gi[t, b, 2 * hidden + j] + r * ghn)
            h[b, j] = states[t, b, j] = n + z * (h[b, j] - n)
            acts[t, b, j], acts[t, b, hidden + j], acts[t, b, 2 * hidden + j], acts[t, b, 3 * hidden + j] = r, z, n, ghn


@njit(cache=True, nogil=True)
def _elman(gi, gh, b_hh, states, acts, t, h, relu):
    batch, hidden = h.shape
    zero = np.zeros(1, h.dtype)[0]
    for b in range(batch):
        for j in range(hidden):
            pre = gi[t, b, j] + gh[b, j] + b_hh[j]
            a = (pre if pre > zero else zero) if relu else fast_tanh(pre)
            h[b, j] = states[t, b, j] = acts[t, b, j] = a


@njit(cache=True, nogil=True)
def rnn_scan(gi, state0, w_hh, b_hh, mode, reverse, states, acts):
    """states (T, B, S) and acts (T, B, A) from gi (T, B, G*H), state0 (B, S), w_hh (G*H, H), b_hh (G*H,)."""
    steps, batch, hidden = gi.shape[0], gi.shape[1], w_hh.shape[1]
    w_t = np.ascontiguousarray(w_hh.T)
    h = state0[:, :hidden].copy()  # updated in place each step (ascontiguousarray may hand back state0 itself)
    gh = np.empty((batch, w_hh.shape[0]), gi.dtype)
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        np.dot(h, w_t, gh)
        if mode == _LSTM:
            _lstm(gi, gh, b_hh, states, acts, t, -1 if s == 0 else (t + 1 if reverse else t - 1), state0, h)
        elif mode == _GRU:
            _gru(gi, gh, b_hh, states, acts, t, h)
        else:
            _elman(gi, gh, b_hh, states, acts, t, h, mode == _RELU)


@njit(cache=True, nogil=True)
def _lstm_back(g_states, states, acts, state0, t, prev, dh, dc, h_prev, g_gi):
    batch, hidden = dh.shape
    one = np.ones(1, dh.dtype)[0]
    for b in range(batch):
        for j in range(hidden):
            cp = state0[b, hidden + j] if prev < 0 else states[prev, b, hidden + j]
            h_prev[t, b, j] = state0[b, j] if prev < 0 else states[prev, b, j]
            d = dh[b, j] + g_states[t, b, j]
            i, f, g, o = acts[t, b, j], acts[t, b, hidden + j], acts[t, b, 2 * hidden + j], acts[t, b, 3 * hidden + j]
            tc = fast_tanh(states[t, b, hidden + j])
            dcv = dc[b, j] + g_states[t, b, hidden + j] + d * o * (one - tc * tc)
            g_gi[t, b, j] = dcv * g * i * (one - i)
            g_gi[t, b, hidden + j] = dcv * cp * f * (one - f)
            g_gi[t, b, 2 * hidden + j] = dcv * i * (one - g * g)
            g_gi[t, b, 3 * hidden + j] = d * tc * o * (one - o)
            dc[b, j] = dcv * f


@njit(cache=True, nogil=True)
def _gru_back(g_states, states, acts, state0, t, prev, dh, carry, h_prev, g_gi, g_gh):
    batch, hidden = dh.shape
    one = np.ones(1, dh.dtype)[0]
    for b in range(batch):
        for j in range(hidden):
            hp = state0[b, j] if prev < 0 else states[prev, b, j]
            h_prev[t, b, j] = hp
            d = dh[b, j] + g_states[t, b, j]
            r, z, n, ghn = acts[t, b, j], acts[t, b, hidden + j], acts[t, b, 2 * hidden + j], acts[t, b, 3 * hidden + j]
            dpn = d * (one - z) * (one - n * n)
            g_gi[t, b, j] = g_gh[t, b, j] = dpn * ghn * r * (one - r)
            g_gi[t, b, hidden + j] = g_gh[t, b, hidden + j] = d * (hp - n) * z * (one - z)
            g_gi[t, b, 2 * hidden + j] = dpn
            g_gh[t, b, 2 * hidden + j] = dpn * r
            carry[b, j] = d * z


@njit(cache=True, nogil=True)
def _elman_back(g_states, states, acts, state0, t, prev, dh, h_prev, g_gi, relu):
    batch, hidden = dh.shape
    one, zero = np.ones(1, dh.dtype)[0], np.zeros(1, dh.dtype)[0]
    for b in range(batch):
        for j in range(hidden):
            h_prev[t, b, j] = state0[b, j] if prev < 0 else states[prev, b, j]
            d, a = dh[b, j] + g_states[t, b, j], acts[t, b, j]
            g_gi[t, b, j] = (d if a > zero else zero) if relu else d * (one - a * a)


@njit(cache=True, nogil=True)
def rnn_scan_backward(g_states, states, acts, state0, w_hh, mode, reverse, g_gi, g_state0, g_w_hh, g_b_hh):
    """The gradients of gi, state0, w_hh and b_hh from the states' gradient, the timesteps in reverse order."""
    steps, batch, hidden = g_states.shape[0], g_states.shape[1], w_hh.shape[1]
    g_gh = np.empty_like(g_gi) if mode == _GRU else g_gi  # d(h W_hh^T + b_hh): GRU's n part is scaled by r
    h_prev = np.empty((steps, batch, hidden), g_gi.dtype)
    dh = np.zeros((batch, hidden), g_gi.dtype)
    dc = np.zeros((batch, hidden), g_gi.dtype)
    carry = np.zeros((batch, hidden), g_gi.dtype)
    for s in range(steps):
        t = s if reverse else steps - 1 - s
        prev = t + 1 if reverse else t - 1
        if prev >= steps:
            prev = -1
        if mode == _LSTM:
            _lstm_back(g_states, states, acts, state0, t, prev, dh, dc, h_prev, g_gi)
        elif mode == _GRU:
            _gru_back(g_states, states, acts, state0, t, prev, dh, carry, h_prev, g_gi, g_gh)
        else:
            _elman_back(g_states, states, acts, state0, t, prev, dh, h_prev, g_gi, mode == _RELU)
        np.dot(g_gh[t], w_hh, dh)
        if mode == _GRU:
            dh += carry
    g_state0[:, :hidden] = dh
    if mode == _LSTM:
        g_state0[:, hidden:] = dc
    rows = g_gh.reshape(steps * batch, g_gh.shape[2])
    np.dot(np.ascontiguousarray(rows.T), h_prev.reshape(steps * batch, hidden), g_w_hh)
    g_b_hh[:] = rows.sum(axis=0)
