"""Time graphnet's compiled CPU conv2d / max-pool kernels at LeNet's training shapes (batch 64, float32).

Each row is the best mean of several timed batches, in ms. Run: ``python benchmarks/bench_conv_kernels.py``
(cap threads with OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 for single-core numbers; add ``--cpu-time`` to time
this thread's CPU time instead of wall time, which is steadier on a shared machine when single-threaded).
"""
import sys
import time

import numpy as np

from graphnet.codegen.templates import conv, pool

BATCH = 64
CONVS = {"conv1": ((BATCH, 1, 32, 32), (6, 1, 5, 5)), "conv2": ((BATCH, 6, 14, 14), (16, 6, 5, 5))}
POOLS = {"pool1": (BATCH, 6, 28, 28), "pool2": (BATCH, 16, 10, 10)}
STRIDE_PAD_DILATION = (1, 1, 0, 0, 1, 1)  # (h, w) each


def best_ms(fn, reps=20, rounds=7, clock=time.perf_counter):
    """Best of `rounds` mean times of `reps` calls (after two warm-up calls that also compile)."""
    fn()
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = clock()
        for _ in range(reps):
            fn()
        best = min(best, (clock() - t0) / reps * 1e3)
    return best


def conv_cases(rng):
    """(name, thunk) for each conv kernel of each LeNet layer."""
    cases = []
    for layer, (xs, ws) in CONVS.items():
        x, w = rng.standard_normal(xs, np.float32), rng.standard_normal(ws, np.float32)
        o, cg, kh, kw = ws
        geo = (kh, kw) + STRIDE_PAD_DILATION
        oh, ow = xs[2] - kh + 1, xs[3] - kw + 1
        cols = np.empty((xs[0], cg * kh * kw, oh * ow), np.float32)
        out = np.empty((xs[0], o, oh, ow), np.float32)
        g = rng.standard_normal(out.shape, np.float32)
        bias, dw, dx = np.zeros(o, np.float32), np.empty_like(w), np.empty_like(x)
        tmp = np.empty((2, cg * kh * kw, o), np.float32)
        cases += [
            (f"{layer} im2col", lambda x=x, cols=cols, geo=geo: conv.im2col(x, geo, cols)),
            (f"{layer} forward", lambda x=x, w=w, b=bias, c=cols, o=out, geo=geo: conv.conv2d_forward(
                x, w, b, False, False, geo, 1, c, o)),
            (f"{layer} forward+bias+relu", lambda x=x, w=w, b=bias, c=cols, o=out, geo=geo: conv.conv2d_forward(
                x, w, b, True, True, geo, 1, c, o)),
            (f"{layer} weight_grad (shared cols)", lambda x=x, g=g, c=cols, t=tmp, d=dw, geo=geo:
                conv.conv2d_weight_grad(x, g, geo, 1, False, c, t, d)),
            (f"{layer} weight_grad (own im2col)", lambda x=x, g=g, c=cols, t=tmp, d=dw, geo=geo:
                conv.conv2d_weight_grad(x, g, geo, 1, True, c, t, d)),
            (f"{layer} input_grad", lambda g=g, w=w, c=cols[0], d=dx, geo=geo: conv.conv2d_input_grad(
                g, w, geo, 1, c, d)),
        ]
    return cases


def pool_cases(rng):
    """(name, thunk) for max-pool 2x2/2 forward and backward at each LeNet pooling shape."""
    cases = []
    for layer, xs in POOLS.items():
        x = rng.standard_normal(xs, np.float32)
        out = np.empty(xs[:2] + (xs[2] // 2, xs[3] // 2), np.float32)
        idx, dx = np.empty(out.shape, np.int64), np.empty_like(x)
        cases += [(f"{layer} max_pool2d", lambda x=x, o=out, i=idx: pool.max_pool2d_forward(
                       x, 2, 2, 2, 2, 0, 0, 1, 1, o, i)),
                  (f"{layer} max_pool2d_backward", lambda o=out, i=idx, d=dx: pool.max_pool2d_backward(o, i, d))]
    return cases


def main():
    clock = time.thread_time if "--cpu-time" in sys.argv else time.perf_counter
    rng = np.random.default_rng(0)
    for name, fn in conv_cases(rng) + pool_cases(rng):
        print(f"{name:32s} {best_ms(fn, clock=clock):7.3f} ms")


if __name__ == "__main__":
    main()
