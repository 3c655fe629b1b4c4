"""Vectorisable float32 ``exp``/``log``/``tanh``/``sigmoid``/``erf`` for Numba kernels.

The llvmlite wheels are not SVML-patched, so ``math.exp`` & co. in a Numba loop become scalar libm calls that
block auto-vectorisation.  These Cephes-style versions (range reduction + polynomial, 2**n built from integer
bits, branch-free selects) inline into the caller and let LLVM vectorise the loop; they are within a few ulp
over the whole float32 range with IEEE special values (inf/nan/signed zero, subnormal results).

Usage in generated kernels: ``from graphnet.codegen.fastmath import fast_exp, fast_log, fast_tanh, fast_sigmoid``.
Each is a generic Numba overload, inlined at IR level: float32 arguments take the polynomial path, any other
numeric type (float64, ints) falls back to ``math.*`` in float64.  Called from plain Python they evaluate with
NumPy.  No fastmath flags are needed (``llvm.fmuladd`` lets LLVM fuse where FMA exists); callers compiled with
``fastmath=True`` (which implies ``nnan``/``ninf``) keep finite results but lose the inf/nan guarantees.
"""

import hashlib
import math
import pathlib

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

__all__ = ["FAST_EXPR", "SOURCE_DIGEST", "fast_erf", "fast_exp", "fast_log", "fast_sigmoid", "fast_tanh"]

FAST_EXPR = {"exp": "fast_exp({0})", "log": "fast_log({0})", "tanh": "fast_tanh({0})", "sigmoid": "fast_sigmoid({0})",
             "erf": "fast_erf({0})"}
# Numba's on-disk cache only tracks the caller's file: embed this in generated kernel source to invalidate cached
# kernels whenever this module changes.
SOURCE_DIGEST = hashlib.sha256(pathlib.Path(__file__).read_bytes()).hexdigest()[:16]

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_f = np.float32
# Numba's fastmath pass only flags float instructions that carry no flags yet; a harmless 'contract' keeps a caller's
# fastmath=True (reassoc/ninf) off the few operations whose exact IEEE behaviour matters.
_FLAGS = ("contract",)

# ---------------------------------------------------------------------------------------------------------------
# LLVM-level helpers (bit casts, rounding, fused multiply-add).  They lower to single vectorisable instructions.
# ---------------------------------------------------------------------------------------------------------------


def _llvm_call(builder, name, args):
    fnty = ir.FunctionType(_F32, [_F32] * len(args))
    return builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), args)


@intrinsic
def _fma(typingctx, a, b, c):
    """a*b + c via llvm.fmuladd (fused when the target has FMA, never a libm call)."""
    if a == b == c == types.float32:
        return types.float32(a, b, c), lambda ctx, bld, sig, args: _llvm_call(bld, "llvm.fmuladd.f32", args)


@intrinsic
def _rint(typingctx, x):
    """Round to nearest-even (vroundps); immune to caller reassociation, unlike the 1.5*2**23 trick."""
    if x == types.float32:
        return types.float32(x), lambda ctx, bld, sig, args: _llvm_call(bld, "llvm.rint.f32", args)


@intrinsic
def _div(typingctx, a, b):
    """Plain IEEE a/b: no ZeroDivisionError branch under the caller's error_model='python'."""
    if a == b == types.float32:
        return types.float32(a, b), lambda ctx, bld, sig, args: bld.fdiv(*args, flags=_FLAGS)


@intrinsic
def _isnan(typingctx, x):
    """NaN test on the integer bits, so a caller's ``nnan`` fast-math flag cannot fold it away."""
    if x == types.float32:

        def codegen(ctx, bld, sig, args):
            bits = bld.and_(bld.bitcast(args[0], _I32), _I32(0x7FFFFFFF))
            return bld.icmp_unsigned(">", bits, _I32(0x7F800000))

        return types.boolean(x), codegen


@intrinsic
def _isinf(typingctx, x):
    """+-inf test on the integer bits (robust to ``ninf``)."""
    if x == types.float32:

        def codegen(ctx, bld, sig, args):
            bits = bld.and_(bld.bitcast(args[0], _I32), _I32(0x7FFFFFFF))
            return bld.icmp_unsigned("==", bits, _I32(0x7F800000))

        return types.boolean(x), codegen


@intrinsic
def _ldexp(typingctx, y, n):
    """y * 2**n for integral float n in [-150, 129], as two exact power-of-two scalings (reaches subnormals)."""
    if y == n == types.float32:

        def codegen(ctx, bld, sig, args):
            ni = bld.fptosi(args[1], _I32)
            n1 = bld.ashr(ni, _I32(1))
            n2 = bld.sub(ni, n1)
            out = args[0]
            for k in (n1, n2):
                out = bld.fmul(out, bld.bitcast(bld.shl(bld.add(k, _I32(127)), _I32(23)), _F32), flags=_FLAGS)
            return out

        return types.float32(y, n), codegen


def _log_split(bld, x):
    # x (positive normal) = m * 2**e with m in [sqrt(.5), sqrt(2)): shift the exponent field relative to sqrt(.5).
    ix = bld.sub(bld.bitcast(x, _I32), _I32(0x3F3504F3))
    m = bld.bitcast(bld.add(bld.and_(ix, _I32(0x007FFFFF)), _I32(0x3F3504F3)), _F32)
    return m, bld.sitofp(bld.ashr(ix, _I32(23)), _F32)


@intrinsic
def _log_mant(typingctx, x):
    if x == types.float32:
        return types.float32(x), lambda ctx, bld, sig, args: _log_split(bld, args[0])[0]


@intrinsic
def _log_expo(typingctx, x):
    if x == types.float32:
        return types.float32(x), lambda ctx, bld, sig, args: _log_split(bld, args[0])[1]


# ---------------------------------------------------------------------------------------------------------------
# float32 kernels.  Every constant is a np.float32 global so Numba keeps the arithmetic in single precision.
# ---------------------------------------------------------------------------------------------------------------

_ZERO, _HALF, _ONE, _TWO = _f(0.0), _f(0.5), _f(1.0), _f(2.0)
_INF, _NAN = _f(np.inf), _f(np.nan)
_LOG2E = _f(1.44269504088896341)
_LN2_HI, _LN2_LO = _f(0.693359375), _f(-2.12194440e-4)  # Cephes split: n*_LN2_HI is exact for |n| < 2**15
_EXP_LO, _EXP_HI = _f(-104.0), _f(89.0)  # exp(-104) rounds to 0, exp(89) overflows; clamping keeps fptosi defined
_EXP_P = tuple(
    _f(c)
    for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
)
_LOG_P = tuple(
    _f(c)
    for c in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
)
# tanh(x) ~ x * P(x^2) / Q(x^2) on [-c, c] (Eigen's and XLA's float32 rational approximation): no exp, one division.
_TANH_P = tuple(
    _f(c)
    for c in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
              1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)
)
_TANH_Q = tuple(_f(c) for c in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03))
_TANH_SAT, _TANH_TINY = _f(7.90531110763549805), _f(0.0004)  # tanh(+-c) rounds to +-1; below tiny, tanh(x) = x
_FLT_MIN, _TWO23 = _f(1.17549435e-38), _f(8388608.0)


@njit(inline="always", cache=True)
def _exp_f32(x):
    # Below _EXP_LO the result is 0: the polynomial then runs on 0, not on -104, whose 2**-150 scaling ends in an
    # underflow that x86 takes a microcode assist for per element (a causal softmax's exp over its -inf half:
    # 13x slower than over finite inputs).
    under = x < _EXP_LO
    xc = _ZERO if under else max(_EXP_LO, min(_EXP_HI, x))  # Numba min/max are Python's selects: NaN -> _EXP_HI
    n = _rint(xc * _LOG2E)
    r = _fma(n, -_LN2_LO, _fma(n, -_LN2_HI, xc))
    p = _fma(_EXP_P[0], r, _EXP_P[1])
    p = _fma(p, r, _EXP_P[2])
    p = _fma(p, r, _EXP_P[3])
    p = _fma(p, r, _EXP_P[4])
    p = _fma(p, r, _EXP_P[5])
    y = _fma(p, r * r, r) + _ONE
    y = _ldexp(y, n)
    return x if _isnan(x) else _ZERO if under else y


@njit(inline="always", cache=True)
def _log_f32(x):
    sub = x < _FLT_MIN  # subnormal (or <= 0, fixed below): rescale by 2**23 so the bit split sees a normal
    xs = x * _TWO23 if sub else x
    m = _log_mant(xs)
    e = _log_expo(xs) - (_f(23.0) if sub else _ZERO)
    f = m - _ONE
    z = f * f
    p = _fma(_LOG_P[0], f, _LOG_P[1])
    p = _fma(p, f, _LOG_P[2])
    p = _fma(p, f, _LOG_P[3])
    p = _fma(p, f, _LOG_P[4])
    p = _fma(p, f, _LOG_P[5])
    p = _fma(p, f, _LOG_P[6])
    p = _fma(p, f, _LOG_P[7])
    p = _fma(p, f, _LOG_P[8])
    y = _fma(e, _LN2_LO, p * f * z)
    y = _fma(-_HALF, z, y)
    y = _fma(e, _LN2_HI, f + y)
    y = -_INF if x == _ZERO else y
    y = x if _isinf(x) else y  # -inf is caught as negative below
    return _NAN if (x < _ZERO) | _isnan(x) else y


@njit(inline="always", cache=True)
def _tanh_f32(x):
    xc = max(-_TANH_SAT, min(_TANH_SAT, x))
    z = xc * xc
    p = _fma(z, _TANH_P[0], _TANH_P[1])
    for c in _TANH_P[2:]:
        p = _fma(z, p, c)
    q = _fma(z, _TANH_Q[0], _TANH_Q[1])
    for c in _TANH_Q[2:]:
        q = _fma(z, q, c)
    y = _div(xc * p, q)
    return x if (abs(x) < _TANH_TINY) | _isnan(x) else y  # keeps -0, tiny values and NaN exactly


@njit(inline="always", cache=True)
def _sigmoid_f32(x):
    e = _exp_f32(-abs(x))  # in (0, 1]: never overflows
    return _div(_ONE if x >= _ZERO else e, _ONE + e)  # x < 0: e / (1 + e), accurate down to subnormal results


_ERF_SMALL = tuple(_f(c) for c in (1.1283791670955126, -0.37612638903183754, 0.11283791670955126,
                                    -0.026866170645131252, 0.005223977625442188, -0.0008548327023450852,
                                    0.00012055332981789664))  # 2/sqrt(pi) * (-1)^n / (n! (2n+1)): |x| < 0.5
_ERF_P = _f(0.3275911)
_ERF_A = tuple(_f(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))  # A&S 7.1.26


@njit(inline="always", cache=True)
def _erf_f32(x):
    """Taylor series below |x| = 0.5 (relative error ~1e-8), Abramowitz & Stegun 7.1.26 above (absolute error
    < 1.5e-7, a few float32 ulp of results near 1); both computed and one selected, so the loop vectorises."""
    a = abs(x)
    z = x * x
    p = _ERF_SMALL[6]
    for c in _ERF_SMALL[5::-1]:
        p = _fma(p, z, c)
    small = x * p
    t = _div(_ONE, _fma(_ERF_P, a, _ONE))
    q = _ERF_A[0]
    for c in _ERF_A[1:]:
        q = _fma(q, t, c)
    big = _ONE - q * t * _exp_f32(-z)
    big = big if x >= _ZERO else -big
    y = small if a < _HALF else big
    return x if _isnan(x) else y


# ---------------------------------------------------------------------------------------------------------------
# Public generic entry points.
# ---------------------------------------------------------------------------------------------------------------


def fast_exp(x):
    """Elementwise exp; polynomial float32 path in jitted code, ``math.exp`` for other types (NumPy in Python)."""
    return np.exp(x)


def fast_log(x):
    """Elementwise natural log; polynomial float32 path in jitted code, ``math.log`` for other types."""
    return np.log(x)


def fast_tanh(x):
    """Elementwise tanh; polynomial float32 path in jitted code, ``math.tanh`` for other types."""
    return np.tanh(x)


def fast_sigmoid(x):
    """Elementwise logistic 1/(1+exp(-x)), overflow-free for any sign; float32 fast path in jitted code."""
    e = np.exp(-np.abs(x))
    return np.where(np.asarray(x) >= 0, 1 / (1 + e), e / (1 + e))


def fast_erf(x):
    """Elementwise erf; polynomial float32 path in jitted code, ``math.erf`` for other types."""
    from scipy import special

    return special.erf(x)


def _erf_f64(x):
    return math.erf(x)


def _exp_f64(x):
    return math.exp(x)


def _log_f64(x):
    return math.log(x)


def _tanh_f64(x):
    return math.tanh(x)


def _sigmoid_f64(x):
    e = math.exp(-abs(x))
    return (1.0 if x >= 0 else e) / (1.0 + e)


def _register(public, f32_impl, f64_impl):
    @overload(public, inline="always")
    def _ov(x):
        if x == types.float32:
            return lambda x: f32_impl(x)
        if isinstance(x, (types.Float, types.Integer, types.Boolean)):
            return f64_impl


_register(fast_exp, _exp_f32, _exp_f64)
_register(fast_log, _log_f32, _log_f64)
_register(fast_tanh, _tanh_f32, _tanh_f64)
_register(fast_sigmoid, _sigmoid_f32, _sigmoid_f64)
_register(fast_erf, _erf_f32, _erf_f64)
