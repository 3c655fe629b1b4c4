"""The recurrent-layer kernels: rnn_scan's whole time loop, and its backward-through-time, as one call each.

Per timestep one GEMM through blas.mm (NumPy's OpenBLAS): gh = b_hh + h W_hh^T against a W_hh^T made contiguous
once (OpenBLAS's transposed-B path measured 1.7x slower at 20x200 @ 200x800), h read in place from the previous
step's state rows, or the adjoint's dh = dgates W_hh; then one gate loop per batch row over 1-d row views, with
fastmath's vectorisable sigmoid/tanh and constants in the arrays' dtype so float32 stays float32 and LLVM
vectorises it (LSTM at 35x20x200, one core: forward 7.3 -> 2.9 ms, backward 7.1 -> 5.8 ms against np.dot per step
and a gate loop over 3-d indices).
The weight gradient is one GEMM over all timesteps (BLAS's transpose flag, no copy). Nothing is allocated per
step (the op's NumPy impl, the reference these are tested against, builds about twenty temporaries per step).
Gate orders, layouts and modes are ir.ops.recurrent's.
"""
import numpy as np
from numba import njit

from ..fastmath import fast_sigmoid, fast_tanh
from .blas import mm

_TANH, _RELU, _LSTM, _GRU = range(4)


@njit(cache=True, nogil=True)
def _lstm_row(pre, c_prev, state, act):
    """One batch row of an LSTM step: gates from pre (gi + b_hh + h W_hh^T), c from c_prev, h and c into state,
    i, f, g, o into act. The width is read as c_prev's: as state's // 2 LLVM kept the loop scalar (2.9 against
    0.4 ms over 35x20x200)."""
    hidden = c_prev.shape[0]
    for j in range(hidden):
        i = fast_sigmoid(pre[j])
        f = fast_sigmoid(pre[hidden + j])
        g = fast_tanh(pre[2 * hidden + j])
        o = fast_sigmoid(pre[3 * hidden + j])
        c = f * c_prev[j] + i * g
        state[j] = o * fast_tanh(c)
        state[hidden + j] = c
        act[j] = i
        act[hidden + j] = f
        act[2 * hidden + j] = g
        act[3 * hidden + j] = o


@njit(cache=True, nogil=True)
def _gru_row(x, gh, prior, state, act):
    hidden = state.shape[0]
    for j in range(hidden):
        r = fast_sigmoid(x[j] + gh[j])
        z = fast_sigmoid(x[hidden + j] + gh[hidden + j])
        ghn = gh[2 * hidden + j]
        n = fast_tanh(x[2 * hidden + j] + r * ghn)
        state[j] = n + z * (prior[j] - n)
        act[j], act[hidden + j], act[2 * hidden + j], act[3 * hidden + j] = r, z, n, ghn


@njit(cache=True, nogil=True)
def _elman_row(pre, state, act, relu):
    zero = np.zeros(1, state.dtype)[0]
    for j in range(state.shape[0]):
        p = pre[j]
        state[j] = act[j] = (p if p > zero else zero) if relu else fast_tanh(p)


@njit(cache=True, nogil=True)
def _gate_bias(x, b_hh, with_x, gh):
    """gh = x + b_hh per row, or b_hh alone (GRU: r scales h W_hn^T + b_hn apart from gi), before BLAS adds h W^T."""
    for b in range(gh.shape[0]):
        row = gh[b]
        if with_x:
            xb = x[b]
            for k in range(row.shape[0]):
                row[k] = xb[k] + b_hh[k]
        else:
            row[:] = b_hh


@njit(cache=True, nogil=True)
def rnn_scan(gi, state0, w_hh, b_hh, mode, reverse, states, acts):
    """states (T, B, S) and acts (T, B, A) from gi (T, B, G*H), state0 (B, S), w_hh (G*H, H), b_hh (G*H,)."""
    steps, batch, hidden = gi.shape[0], gi.shape[1], w_hh.shape[1]
    w_t = np.ascontiguousarray(w_hh.T)
    gh = np.empty((batch, w_hh.shape[0]), gi.dtype)
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        prior = state0 if s == 0 else states[t + 1 if reverse else t - 1]
        _gate_bias(gi[t], b_hh, mode != _GRU, gh)
        mm(prior[:, :hidden], w_t, gh, False, False, 1.0)
        for b in range(batch):
            if mode == _LSTM:
                _lstm_row(gh[b], prior[b, hidden:], states[t, b], acts[t, b])
            elif mode == _GRU:
                _gru_row(gi[t, b], gh[b], prior[b], states[t, b], acts[t, b])
            else:
                _elman_row(gh[b], states[t, b], acts[t, b], mode == _RELU)


@njit(cache=True, nogil=True)
def _lstm_back_row(g_state, state, act, prior, dh, dc, h_prev, g_gi):
    """One batch row of an LSTM step's adjoint: g_gi from dh (the next step's, plus this step's state gradient) and
    dc, which becomes the previous step's; h_prev gets the prior h for the weight gradient."""
    hidden = dh.shape[0]
    one = np.ones(1, dh.dtype)[0]
    for j in range(hidden):
        h_prev[j] = prior[j]
        d = dh[j] + g_state[j]
        i, f, g, o = act[j], act[hidden + j], act[2 * hidden + j], act[3 * hidden + j]
        tc = fast_tanh(state[hidden + j])
        dcv = dc[j] + g_state[hidden + j] + d * o * (one - tc * tc)
        g_gi[j] = dcv * g * i * (one - i)
        g_gi[hidden + j] = dcv * prior[hidden + j] * f * (one - f)
        g_gi[2 * hidden + j] = dcv * i * (one - g * g)
        g_gi[3 * hidden + j] = d * tc * o * (one - o)
        dc[j] = dcv * f


@njit(cache=True, nogil=True)
def _gru_back_row(g_state, act, prior, dh, carry, h_prev, g_gi, g_gh):
    hidden = dh.shape[0]
    one = np.ones(1, dh.dtype)[0]
    for j in range(hidden):
        hp = prior[j]
        h_prev[j] = hp
        d = dh[j] + g_state[j]
        r, z, n, ghn = act[j], act[hidden + j], act[2 * hidden + j], act[3 * hidden + j]
        dpn = d * (one - z) * (one - n * n)
        g_gi[j] = g_gh[j] = dpn * ghn * r * (one - r)
        g_gi[hidden + j] = g_gh[hidden + j] = d * (hp - n) * z * (one - z)
        g_gi[2 * hidden + j] = dpn
        g_gh[2 * hidden + j] = dpn * r
        carry[j] = d * z


@njit(cache=True, nogil=True)
def _elman_back_row(g_state, act, prior, dh, h_prev, g_gi, relu):
    one, zero = np.ones(1, dh.dtype)[0], np.zeros(1, dh.dtype)[0]
    for j in range(dh.shape[0]):
        h_prev[j] = prior[j]
        d, a = dh[j] + g_state[j], act[j]
        g_gi[j] = (d if a > zero else zero) if relu else d * (one - a * a)


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
        prior = state0 if prev < 0 or prev >= steps else states[prev]
        for b in range(batch):
            if mode == _LSTM:
                _lstm_back_row(g_states[t, b], states[t, b], acts[t, b], prior[b], dh[b], dc[b], h_prev[t, b],
                               g_gi[t, b])
            elif mode == _GRU:
                _gru_back_row(g_states[t, b], acts[t, b], prior[b], dh[b], carry[b], h_prev[t, b], g_gi[t, b],
                              g_gh[t, b])
            else:
                _elman_back_row(g_states[t, b], acts[t, b], prior[b], dh[b], h_prev[t, b], g_gi[t, b], mode == _RELU)
        mm(g_gh[t], w_hh, dh, False, False, 0.0)
        if mode == _GRU:
            dh += carry
    g_state0[:, :hidden] = dh
    if mode == _LSTM:
        g_state0[:, hidden:] = dc
    rows = g_gh.reshape(steps * batch, g_gh.shape[2])
    mm(rows, h_prev.reshape(steps * batch, hidden), g_w_hh, True, False, 0.0)
    g_b_hh[:] = 0
    for r in range(rows.shape[0]):
        g_b_hh += rows[r]
