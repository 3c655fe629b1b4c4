"""Framework-independent definitions of the CPU benchmark workloads.

Workloads (float32): mlp_train (784->256->10, batch 64), lenet_train (LeNet-5, batch 64),
lenet_infer (LeNet-5 forward, batch 256) and eltwise_chain (y = sigmoid(relu(x*2+1)*x - 0.5) * tanh(x)
on 4,194,304 elements). Training uses mean cross-entropy and SGD(lr=0.01, momentum=0.9) with PyTorch
semantics (buf = momentum*buf + grad; p -= lr*buf). ``make_data`` fixes weights and inputs for every
framework, and ``measure`` times a ``Case`` the same way for every framework.
"""

import dataclasses
import math
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

WORKLOADS = ("mlp_train", "lenet_train", "lenet_infer", "eltwise_chain")
BATCH = {"mlp_train": 64, "lenet_train": 64, "lenet_infer": 256}
LR, MOMENTUM, NUM_CLASSES = 0.01, 0.9, 10
ELTWISE_N = 4_194_304
THREADS = 2
WARMUP_STEPS = {"eager": 5, "compiled": 10}  # after the separately timed first call
STEP_SLOW_S, SLOW_BUDGET_S, MIN_SLOW_STEPS = 0.2, 10.0, 5  # slow steps get ~SLOW_BUDGET_S of timed steps
LOSS_TOL, OUT_TOL = 1e-3, 1e-3  # cross-check tolerances vs the NumPy float64 references


@dataclasses.dataclass
class Case:
    """One benchmark step: ``step()`` runs a full synchronised step and returns the loss or the output."""

    step: Callable[[], Any]
    to_host: Callable[[Any], Any] = np.asarray  # result -> NumPy, only called off the clock
    notes: str = ""


# ---------------------------------------------------------------- data and NumPy references
def _uniform(rng, shape, fan_in):
    """PyTorch's default Linear/Conv2d init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as float32."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def mlp_params(rng):
    """fc1.w (256, 784), fc1.b, fc2.w (10, 256), fc2.b: Linear weights in PyTorch's (out, in) layout."""
    p = {}
    for name, fin, fout in (("fc1", 784, 256), ("fc2", 256, 10)):
        p[name + ".w"], p[name + ".b"] = _uniform(rng, (fout, fin), fin), _uniform(rng, (fout,), fin)
    return p


def lenet_params(rng):
    """c1/c2 conv weights (out, in, 5, 5), f1/f2/f3 Linear weights (out, in), each followed by its bias."""
    p = {}
    for name, cin, cout in (("c1", 1, 6), ("c2", 6, 16)):
        fan_in = cin * 25
        p[name + ".w"], p[name + ".b"] = _uniform(rng, (cout, cin, 5, 5), fan_in), _uniform(rng, (cout,), fan_in)
    for name, fin, fout in (("f1", 400, 120), ("f2", 120, 84), ("f3", 84, 10)):
        p[name + ".w"], p[name + ".b"] = _uniform(rng, (fout, fin), fin), _uniform(rng, (fout,), fin)
    return p


def np_mlp_forward(p, x):
    """Logits of Linear-ReLU-Linear."""
    h = np.maximum(x @ p["fc1.w"].T + p["fc1.b"], 0)
    return h @ p["fc2.w"].T + p["fc2.b"]


def _np_conv(h, w, b):
    """Valid, stride-1 2-D convolution (cross-correlation) in NCHW / OIHW."""
    win = np.lib.stride_tricks.sliding_window_view(h, w.shape[2:], axis=(2, 3))  # N, C, H', W', kh, kw
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True) + b[None, :, None, None]


def _np_pool(h):
    """2x2 max-pool, stride 2."""
    n, c, hh, ww = h.shape
    return h.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))


def np_lenet_forward(p, x):
    """Logits of conv6-ReLU-pool, conv16-ReLU-pool, flatten, 400-120-ReLU, 120-84-ReLU, 84-10."""
    h = _np_pool(np.maximum(_np_conv(x, p["c1.w"], p["c1.b"]), 0))
    h = _np_pool(np.maximum(_np_conv(h, p["c2.w"], p["c2.b"]), 0))
    h = h.reshape(len(h), -1)
    h = np.maximum(h @ p["f1.w"].T + p["f1.b"], 0)
    h = np.maximum(h @ p["f2.w"].T + p["f2.b"], 0)
    return h @ p["f3.w"].T + p["f3.b"]


def np_cross_entropy(logits, y):
    """Mean softmax cross-entropy of integer labels ``y``."""
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
    return float(np.mean(lse - logits[np.arange(len(y)), y]))


def np_eltwise(x):
    """The element-wise chain: sigmoid(relu(x*2+1)*x - 0.5) * tanh(x)."""
    return 1.0 / (1.0 + np.exp(-(np.maximum(x * 2 + 1, 0) * x - 0.5))) * np.tanh(x)


def make_data(workload, seed=0):
    """Float32 inputs and initial weights of one workload, plus float64 NumPy references.

    Keys: ``x`` always; ``params`` (ordered dict name -> array), ``y`` (int64 labels), ``ref_out`` (logits)
    and ``ref_loss`` for the MLP/LeNet workloads; ``ref_out`` for eltwise_chain.
    """
    rng = np.random.default_rng(seed)
    if workload == "eltwise_chain":
        x = rng.standard_normal(ELTWISE_N, dtype=np.float32)
        return dict(x=x, ref_out=np_eltwise(x.astype(np.float64)))
    if workload == "mlp_train":
        params, forward, shape = mlp_params(rng), np_mlp_forward, (BATCH[workload], 784)
    elif workload in ("lenet_train", "lenet_infer"):
        params, forward, shape = lenet_params(rng), np_lenet_forward, (BATCH[workload], 1, 32, 32)
    else:
        raise ValueError(f"unknown workload {workload!r}")
    x, y = rng.standard_normal(shape, dtype=np.float32), rng.integers(0, NUM_CLASSES, shape[0])
    logits = forward({k: v.astype(np.float64) for k, v in params.items()}, x.astype(np.float64))
    return dict(params=params, x=x, y=y, ref_out=logits, ref_loss=np_cross_entropy(logits, y))


# ---------------------------------------------------------------- timing
def cap_threads(threads=THREADS):
    """Cap OpenMP/MKL/OpenBLAS/tinygrad threads and CPU affinity; call before importing a framework."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUM_CPU_THREADS"):
        os.environ[var] = str(threads)
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > threads:
            os.sched_setaffinity(0, cpus[:threads])
    except (AttributeError, OSError):
        pass


def time_steps(step, warmup, steps):
    """Run ``warmup`` untimed steps, then time ``steps`` steps (fewer if a step is slow); return seconds."""
    warm = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        step()
        warm.append(time.perf_counter() - t0)
    est = statistics.median(warm[-3:]) if warm else 0.0
    n = steps if est <= STEP_SLOW_S else max(MIN_SLOW_STEPS, min(steps, int(SLOW_BUDGET_S / est)))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def check_results(workload, data, results):
    """Cross-checks of steps 1-3: loss@1 vs the NumPy reference and loss@3 (train), else max abs error."""
    if workload.endswith("_train"):
        loss1, loss3 = float(results[0]), float(results[2])
        ok = abs(loss1 - data["ref_loss"]) <= LOSS_TOL and math.isfinite(loss3)
        note = f"loss@1={loss1:.5f} (ref {data['ref_loss']:.5f}); loss@3={loss3:.5f}"
        return dict(loss1=loss1, loss3=loss3, ref_loss=data["ref_loss"], ok=ok, check=note)
    out, ref = np.asarray(results[0], dtype=np.float64), data["ref_out"]
    err = float(np.max(np.abs(out - ref))) if out.shape == ref.shape else math.inf
    return dict(max_abs_err=err, ok=err <= OUT_TOL, check=f"max abs err {err:.1e}")


def measure(case, workload, data, warmup, steps):
    """Time the first call alone, warm up (steps 2-3 kept for the checks), then time ``steps`` steps."""
    t0 = time.perf_counter()
    r = case.step()
    first_s = time.perf_counter() - t0
    kept = [np.array(case.to_host(r), copy=True)]
    kept += [np.array(case.to_host(case.step()), copy=True) for _ in range(2)]
    times = time_steps(case.step, max(warmup - 2, 0), steps)
    checks = check_results(workload, data, kept)
    notes = "; ".join(s for s in (case.notes, checks.pop("check"), "" if checks["ok"] else "MISMATCH") if s)
    return dict(steps=len(times), median_ms=statistics.median(times) * 1e3, min_ms=min(times) * 1e3,
                first_call_s=first_s, **checks, notes=notes)
