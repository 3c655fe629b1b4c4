"""rnn_scan / rnn_scan_backward on device arrays: the time loop on the host, per timestep one tiled GEMM and one
gate kernel of codegen's cuda_recurrent (2T launches per layer direction; the GEMM reads h_{t-1} in place, as the
rows of width S of the states)."""
from ...codegen.cuda import grid_for
from ...codegen.templates.cuda_recurrent import kernel
from ...ir.ops.recurrent import MODES
from .. import cuda_backend, storage
from .gemm import gemm_strided


def _zeros(shape, dtype):
    return cuda_backend._fill(storage.empty(tuple(shape), dtype), 0)


def _order(steps, reverse, backward=False):
    """(t, previous t or -1) in the order the forward (or, reversed, the backward) visits the timesteps."""
    ts = list(range(steps))
    ts = ts[::-1] if reverse != backward else ts
    return [(t, (t + 1 if reverse else t - 1) if 0 <= (t + 1 if reverse else t - 1) < steps else -1) for t in ts]


def rnn_scan(arrays, attrs, types):
    gi, state0, w_hh, b_hh = arrays
    mode, (steps, batch, gates), hidden = MODES[attrs["mode"]], gi.shape, w_hh.shape[1]
    states, acts = (storage.empty(t.shape, t.dtype.np) for t in types)
    if steps * batch * hidden == 0:
        return [states, acts]
    width = states.shape[2]
    gh = storage.empty((batch, gates), gi.dtype)
    flat = [storage.flat(a) for a in (gi, gh, b_hh, states, acts, state0)]
    step = kernel("scan_step")[grid_for(batch * hidden)]
    for t, prev in _order(steps, attrs["reverse"]):
        h = flat[5] if prev < 0 else flat[3][prev * batch * width:(prev + 1) * batch * width]  # rows of width S
        gemm_strided(h, storage.flat(w_hh), flat[1], batch, gates, hidden, (1, 1), (0, 0, width, 1), (0, 0, 1, hidden))
        step(*flat, t, prev, batch, hidden, gates, mode)
    return [states, acts]


def rnn_scan_backward(arrays, attrs, types):
    g_states, states, acts, state0, w_hh = arrays
    mode, (steps, batch), (gates, hidden) = MODES[attrs["mode"]], g_states.shape[:2], w_hh.shape
    dtype = w_hh.dtype
    g_gi, g_state0, g_w_hh, g_b_hh = (_zeros(t.shape, t.dtype.np) for t in types)
    if steps * batch * hidden == 0:
        return [g_gi, g_state0, g_w_hh, g_b_hh]
    g_gh = _zeros(g_gi.shape, dtype) if mode == MODES["GRU"] else g_gi
    dh, carry, dc = (_zeros((batch, hidden), dtype) for _ in range(3))
    h_prev = storage.empty((steps, batch, hidden), dtype)
    flat = [storage.flat(a) for a in (g_states, states, acts, state0, dh, carry, dc, h_prev, g_gi, g_gh)]
    step = kernel("scan_back_step")[grid_for(batch * hidden)]
    rows = batch * gates
    for t, prev in _order(steps, attrs["reverse"], backward=True):
        step(*flat, t, prev, batch, hidden, gates, mode)
        gemm_strided(flat[9][t * rows:(t + 1) * rows], storage.flat(w_hh), flat[4], batch, hidden, gates, (1, 1),
                     (0, 0, gates, 1), (0, 0, hidden, 1))
    kernel("scan_finish")[grid_for(batch * hidden)](flat[4], flat[5], flat[6], storage.flat(g_state0), batch, hidden,
                                                    mode)
    # g_w_hh (G*H, H) = g_gh^T (G*H, T*B) @ h_prev (T*B, H); g_b_hh = the column sums of g_gh
    gemm_strided(flat[9], flat[7], storage.flat(g_w_hh), gates, hidden, steps * batch, (1, 1), (0, 0, 1, gates),
                 (0, 0, hidden, 1))
    g_b_hh = cuda_backend.apply("sum", g_gh.reshape(steps * batch, gates), dims=(0,), keepdim=False)
    return [g_gi, g_state0, g_w_hh, g_b_hh]


HANDLERS = {"rnn_scan": rnn_scan, "rnn_scan_backward": rnn_scan_backward}
