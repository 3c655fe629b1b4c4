"""Accuracy and special-value tests for graphnet.codegen.fastmath (vectorisable float32 transcendentals).

Measured worst cases over all 2**32 float32 inputs: exp 1.01 ulp, log 0.83 ulp, tanh 4.90 ulp (the rational
approximation XLA uses too), sigmoid 2.40 ulp
(every 17th bit pattern with a fastmath=True caller: log 1.62, the others unchanged), and every inf/nan/overflow
result matched.  The asserted bounds leave ~0.6-1 ulp of slack.
"""

import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphnet.codegen.fastmath import FAST_EXPR, fast_exp, fast_log, fast_sigmoid, fast_tanh

NAMES = ("exp", "log", "tanh", "sigmoid")
MAX_ULP = {"exp": 2.0, "log": 2.0, "tanh": 5.5, "sigmoid": 3.0}


def _kernel(fastmath):
    @numba.njit(fastmath=fastmath)
    def run(x, out):
        for i in range(x.size):
            v = x[i]
            out[0, i] = fast_exp(v)
            out[1, i] = fast_log(v)
            out[2, i] = fast_tanh(v)
            out[3, i] = fast_sigmoid(v)

    return run


_KERNELS = {False: _kernel(False), True: _kernel(True)}


def _fast(x, fastmath=False):
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty((4, x.size), np.float32)
    _KERNELS[fastmath](x, out)
    return dict(zip(NAMES, out))


def _reference(x):
    with np.errstate(all="ignore"):  # signalling-NaN bit patterns, log(<0), overflow
        x = np.asarray(x, np.float32).astype(np.float64)
        e = np.exp(-np.abs(x))
        sig = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return {"exp": np.exp(x), "log": np.log(x), "tanh": np.tanh(x), "sigmoid": sig}


def _ulp_error(y, ref):
    """|y - ref| in units of the float32 spacing at ref; non-finite results must match exactly (nan == nan)."""
    with np.errstate(over="ignore"):
        r32 = ref.astype(np.float32)
    fin = np.isfinite(r32)
    same = (y == r32) | (np.isnan(y) & np.isnan(r32))
    assert same[~fin].all(), (y[~fin][~same[~fin]][:5], r32[~fin][~same[~fin]][:5])
    assert np.isfinite(y[fin]).all()
    return np.abs(y[fin].astype(np.float64) - ref[fin]) / np.spacing(np.abs(r32[fin]))


def _sweep_inputs():
    bits = np.arange(0, 1 << 32, 4099, dtype=np.uint64).astype(np.uint32)  # every exponent, both signs, nan/inf
    grids = [
        np.geomspace(1e-45, 3e38, 200_001),
        np.linspace(-110.0, 95.0, 400_001),  # exp/sigmoid over/underflow edges
        np.linspace(3e-4, 5e-4, 20_001),  # tanh: x itself below 4e-4
        np.linspace(4.5, 8.5, 100_001),  # tanh: its worst case near 5.1, the clamp at 7.905
        np.linspace(0.5, 2.0, 100_001),  # log around 1
    ]
    g = np.concatenate([g.astype(np.float32) for g in grids])
    return np.concatenate([bits.view(np.float32), g, -g])


@pytest.fixture(scope="module")
def sweep():
    x = _sweep_inputs()
    return x, _reference(x)


@pytest.mark.parametrize("fastmath", [False, True])
def test_ulp_error_whole_range(sweep, fastmath):
    x, ref = sweep
    got = _fast(x, fastmath)
    for name in NAMES:
        assert got[name].dtype == np.float32
        err = _ulp_error(got[name], ref[name])
        worst = int(np.argmax(err))
        assert err[worst] <= MAX_ULP[name], (
            name,
            float(err[worst]),
            x[np.isfinite(ref[name].astype(np.float32))][worst],
        )


SPECIAL = {
    "exp": [
        (0.0, 1.0),
        (-0.0, 1.0),
        (np.inf, np.inf),
        (-np.inf, 0.0),
        (np.nan, np.nan),
        (88.72283, 3.40280e38),
        (88.72284, np.inf),
        (1e30, np.inf),
        (-104.0, 0.0),
        (-104.5, 0.0),  # below the clamp: 0 without the polynomial's underflowing 2**-150 scaling
        (-1e30, 0.0),
        (-3.4028235e38, 0.0),
        (-103.0, 1.4013e-45),
        (-87.5, 9.98235e-39),  # a subnormal result, still through the polynomial
    ],
    "log": [
        (0.0, -np.inf),
        (-0.0, -np.inf),
        (np.inf, np.inf),
        (-np.inf, np.nan),
        (np.nan, np.nan),
        (-1.0, np.nan),
        (1.0, 0.0),
        (1e-45, -103.27893),
        (3.4028235e38, 88.72284),
    ],
    "tanh": [
        (0.0, 0.0),
        (np.inf, 1.0),
        (-np.inf, -1.0),
        (np.nan, np.nan),
        (20.0, 1.0),
        (-1e30, -1.0),
        (1e-40, 1e-40),
        (-1e-30, -1e-30),
    ],
    "sigmoid": [
        (0.0, 0.5),
        (np.inf, 1.0),
        (-np.inf, 0.0),
        (np.nan, np.nan),
        (100.0, 1.0),
        (-1e30, 0.0),
        (-100.0, 3.7835e-44),
        (1e-30, 0.5),
    ],
}


@pytest.mark.parametrize("fastmath", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_special_values(name, fastmath):
    x, want = np.array(SPECIAL[name], dtype=np.float32).T
    got = _fast(x, fastmath)[name]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)
    if name in ("exp", "sigmoid") or fastmath:
        return
    # signed zeros: tanh(-0) = -0, log(+-0) = -inf
    zeros = _fast(np.array([-0.0, 0.0], np.float32))
    assert np.signbit(zeros["tanh"]).tolist() == [True, False]


@settings(max_examples=300, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_hypothesis_properties(v):
    x = np.array([v, -v], np.float32)
    got, ref = _fast(x), _reference(x)
    for name in NAMES:
        assert (_ulp_error(got[name], ref[name]) <= MAX_ULP[name]).all(), name
    assert got["tanh"][0] == -got["tanh"][1]  # odd
    # sigmoid(x) + sigmoid(-x) = 1 up to the rounding of both terms (<= 3 ulp each, ulp <= 2**-24 on [0.5, 1))
    assert abs(float(got["sigmoid"][0]) + float(got["sigmoid"][1]) - 1.0) <= 2**-21
    assert 0.0 <= got["sigmoid"][0] <= 1.0 and -1.0 <= got["tanh"][0] <= 1.0


@numba.njit
def _scalar_all(x):
    return fast_exp(x), fast_log(x), fast_tanh(x), fast_sigmoid(x)


def test_float64_falls_back_to_math():
    for v in (-3.5, 0.25, 2.0, 700.0):
        e, lg, t, s = _scalar_all(v)
        assert (e, t) == (math.exp(v), math.tanh(v))
        assert lg == math.log(v) if v > 0 else math.isnan(lg)
        assert s == pytest.approx(1 / (1 + math.exp(-v)), rel=1e-15)
    assert _scalar_all(-800.0)[3] == 0.0 and _scalar_all(800.0)[3] == 1.0
    assert all(isinstance(r, float) for r in _scalar_all(3))  # ints promote to float64


def test_python_level_calls_and_expr_table():
    assert fast_exp(np.float32(1.0)) == np.exp(np.float32(1.0))
    np.testing.assert_allclose(fast_sigmoid(np.array([-800.0, 0.0, 800.0])), [0.0, 0.5, 1.0])
    assert fast_log(1.0) == 0.0 and fast_tanh(0.0) == 0.0
    assert {k: v.format("x") for k, v in FAST_EXPR.items()} == {
        "exp": "fast_exp(x)",
        "log": "fast_log(x)",
        "tanh": "fast_tanh(x)",
        "sigmoid": "fast_sigmoid(x)",
        "erf": "fast_erf(x)",
    }


def test_loop_is_vectorised_without_libm_calls():
    ir = "".join(_KERNELS[False].inspect_llvm().values())
    assert "x float>" in ir  # LLVM vector type: the loop was auto-vectorised
    # llvm.exp.v16f32 & co. would be scalarised back into 16 libm calls by the x86 backend
    for libm in ("@expf", "@logf", "@tanhf", "@llvm.exp.", "@llvm.log.", "@llvm.tanh."):
        assert libm not in ir
