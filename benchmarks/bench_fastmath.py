"""Benchmark graphnet.codegen.fastmath against libm calls on a fused elementwise chain.

Chain: y = sigmoid(relu(2x + 1) * x - 0.5) * tanh(x) over 4,194,304 float32 values, as a Numba ``parallel=True``
prange loop using (a) ``math.exp``/``math.tanh`` (scalar libm calls) and (b) the vectorisable ``fast_*`` functions.
Run: ``python benchmarks/bench_fastmath.py``.
"""

import functools
import math
import time

import numba
import numpy as np

from graphnet.codegen.fastmath import fast_sigmoid, fast_tanh

N = 4_194_304
RUNS = 30


@numba.njit(parallel=True, cache=True)
def chain_libm(x, out):
    for i in numba.prange(x.size):
        v = x[i]
        h = max(v * np.float32(2.0) + np.float32(1.0), np.float32(0.0)) * v - np.float32(0.5)
        out[i] = np.float32(1.0) / (np.float32(1.0) + math.exp(-h)) * math.tanh(v)


@numba.njit(parallel=True, cache=True)
def chain_fast(x, out):
    for i in numba.prange(x.size):
        v = x[i]
        h = max(v * np.float32(2.0) + np.float32(1.0), np.float32(0.0)) * v - np.float32(0.5)
        out[i] = fast_sigmoid(h) * fast_tanh(v)


@numba.njit(parallel=True, cache=True)
def chain_notrans(x, out):
    for i in numba.prange(x.size):
        v = x[i]
        h = max(v * np.float32(2.0) + np.float32(1.0), np.float32(0.0)) * v - np.float32(0.5)
        out[i] = h * v


def reference(x):
    x = x.astype(np.float64)
    h = np.maximum(2 * x + 1, 0) * x - 0.5
    return 1 / (1 + np.exp(-h)) * np.tanh(x)


def median_ms(fn, runs=RUNS):
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main():
    numba.set_num_threads(2)
    x = np.random.default_rng(0).standard_normal(N, dtype=np.float32)
    out = np.empty_like(x)
    ref = reference(x)
    print(f"n={N} float32, {numba.get_num_threads()} threads, median of {RUNS} runs")
    print(f"numpy copy (memory floor)   : {median_ms(lambda: np.copyto(out, x)):7.3f} ms")
    print(f"numba, no transcendentals   : {median_ms(lambda: chain_notrans(x, out)):7.3f} ms")
    for name, fn in (("numba + math.exp/math.tanh", chain_libm), ("numba + fast_sigmoid/tanh", chain_fast)):
        ms = median_ms(functools.partial(fn, x, out))
        err = float(np.max(np.abs(out - ref)))
        print(f"{name:28s}: {ms:7.3f} ms   max abs err vs float64 = {err:.3g}")


if __name__ == "__main__":
    main()
