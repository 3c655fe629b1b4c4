"""rnn_scan on the GPU: per timestep the GEMM h W_hh^T (the tiled GEMM kernel) and one gate kernel, a thread per
(batch, hidden) element; the backward-through-time likewise, its GEMM dgates W_hh feeding the next step's kernel.
Layouts, gate orders and modes are ir.ops.recurrent's (0 tanh, 1 ReLU, 2 LSTM, 3 GRU). This is the kernel source;
the time loop and launches are runtime/cuda_kernels/recurrent.py's."""
import functools

from ..cuda import load

SOURCE = '''import math

from numba import cuda


@cuda.jit(device=True)
def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@cuda.jit(cache=True)
def scan_step(gi, gh, b_hh, states, acts, state0, t, prev, batch, hidden, gates, mode):
    """Step t: gates from gi[t] + gh + b_hh (gh = h_prev W_hh^T, the GEMM just run); writes states[t], acts[t]."""
    s = 2 * hidden if mode == 2 else hidden
    a = 4 * hidden if mode >= 2 else hidden
    for e in range(cuda.grid(1), batch * hidden, cuda.gridsize(1)):
        b, j = e // hidden, e % hidden
        x = (t * batch + b) * gates
        g = b * gates
        st = (t * batch + b) * s
        ac = (t * batch + b) * a
        if mode == 2:
            c_prev = state0[b * s + hidden + j] if prev < 0 else states[(prev * batch + b) * s + hidden + j]
            i = sigmoid(gi[x + j] + gh[g + j] + b_hh[j])
            f = sigmoid(gi[x + hidden + j] + gh[g + hidden + j] + b_hh[hidden + j])
            gg = math.tanh(gi[x + 2 * hidden + j] + gh[g + 2 * hidden + j] + b_hh[2 * hidden + j])
            o = sigmoid(gi[x + 3 * hidden + j] + gh[g + 3 * hidden + j] + b_hh[3 * hidden + j])
            c = f * c_prev + i * gg
            hv = o * math.tanh(c)
            states[st + hidden + j] = c
            acts[ac + j] = i
            acts[ac + hidden + j] = f
            acts[ac + 2 * hidden + j] = gg
            acts[ac + 3 * hidden + j] = o
        elif mode == 3:
            r = sigmoid(gi[x + j] + gh[g + j] + b_hh[j])
            z = sigmoid(gi[x + hidden + j] + gh[g + hidden + j] + b_hh[hidden + j])
            ghn = gh[g + 2 * hidden + j] + b_hh[2 * hidden + j]
            n = math.tanh(gi[x + 2 * hidden + j] + r * ghn)
            hp = state0[b * s + j] if prev < 0 else states[(prev * batch + b) * s + j]
            hv = n + z * (hp - n)
            acts[ac + j] = r
            acts[ac + hidden + j] = z
            acts[ac + 2 * hidden + j] = n
            acts[ac + 3 * hidden + j] = ghn
        else:
            pre = gi[x + j] + gh[g + j] + b_hh[j]
            hv = math.tanh(pre) if mode == 0 else max(pre, 0.0)
            acts[ac + j] = hv
        states[st + j] = hv


@cuda.jit(cache=True)
def scan_back_step(g_states, states, acts, state0, dh, carry, dc, h_prev, g_gi, g_gh, t, prev, batch, hidden,
                   gates, mode):
    """Step t of the adjoint: d = dh (the last GEMM) + carry (GRU's z * d) + g_states[t]; writes g_gi[t], g_gh[t]
    (the next GEMM's operand), dc (LSTM), carry (GRU) and h_prev[t] (for the weight gradient)."""
    s = 2 * hidden if mode == 2 else hidden
    a = 4 * hidden if mode >= 2 else hidden
    for e in range(cuda.grid(1), batch * hidden, cuda.gridsize(1)):
        b, j = e // hidden, e % hidden
        st = (t * batch + b) * s
        pst = b * s if prev < 0 else (prev * batch + b) * s
        hp = state0[pst + j] if prev < 0 else states[pst + j]
        h_prev[(t * batch + b) * hidden + j] = hp
        d = dh[e] + carry[e] + g_states[st + j]
        ac = (t * batch + b) * a
        x = (t * batch + b) * gates
        if mode == 2:
            cp = state0[pst + hidden + j] if prev < 0 else states[pst + hidden + j]
            i, f = acts[ac + j], acts[ac + hidden + j]
            gg, o = acts[ac + 2 * hidden + j], acts[ac + 3 * hidden + j]
            tc = math.tanh(states[st + hidden + j])
            dcv = dc[e] + g_states[st + hidden + j] + d * o * (1.0 - tc * tc)
            g_gi[x + j] = dcv * gg * i * (1.0 - i)
            g_gi[x + hidden + j] = dcv * cp * f * (1.0 - f)
            g_gi[x + 2 * hidden + j] = dcv * i * (1.0 - gg * gg)
            g_gi[x + 3 * hidden + j] = d * tc * o * (1.0 - o)
            dc[e] = dcv * f
        elif mode == 3:
            r, z = acts[ac + j], acts[ac + hidden + j]
            n, ghn = acts[ac + 2 * hidden + j], acts[ac + 3 * hidden + j]
            dpn = d * (1.0 - z) * (1.0 - n * n)
            dr = dpn * ghn * r * (1.0 - r)
            dz = d * (hp - n) * z * (1.0 - z)
            g_gi[x + j] = dr
            g_gi[x + hidden + j] = dz
            g_gi[x + 2 * hidden + j] = dpn
            g_gh[x + j] = dr
            g_gh[x + hidden + j] = dz
            g_gh[x + 2 * hidden + j] = dpn * r
            carry[e] = d * z
        else:
            av = acts[ac + j]
            g_gi[x + j] = d * (1.0 - av * av) if mode == 0 else (d if av > 0 else 0.0)


@cuda.jit(cache=True)
def scan_finish(dh, carry, dc, g_state0, batch, hidden, mode):
    """g_state0 = [dh + carry, dc] (dc only for an LSTM)."""
    s = 2 * hidden if mode == 2 else hidden
    for e in range(cuda.grid(1), batch * hidden, cuda.gridsize(1)):
        b, j = e // hidden, e % hidden
        g_state0[b * s + j] = dh[e] + carry[e]
        if mode == 2:
            g_state0[b * s + hidden + j] = dc[e]
'''


@functools.lru_cache(maxsize=None)
def kernel(name):
    return load(SOURCE, name)
