"""Elementwise primitives: one row each (NumPy impl, scalar template for fusion, gradient rule written with ops)."""
import contextvars
import threading

import numpy as np
from scipy import special

from ...core import dtype as dt
from ...core.bind import op
from ...core.opdef import OpDef, OpError, register
from ...core.types import TensorType
from .util import broadcast_shapes, unbroadcast

_FLOAT_ONLY = {"exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf",
               "erfc", "div"}
# Unary ops PyTorch refuses on bool tensors: (exception class, PyTorch's message)
_NO_BOOL = {
    "neg": (OpError, "neg: Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
                     "invert a mask, use the `~` or `logical_not()` operator instead."),
    "abs": (NotImplementedError, "\"abs_cpu\" not implemented for 'Bool'"),
    "relu": (OpError, "Boolean inputs not supported for relu"),
    "clamp_tensor": (NotImplementedError, "\"clamp_cpu\" not implemented for 'Bool'"),
    "floor": (NotImplementedError, "\"floor_vml_cpu\" not implemented for 'Bool'"),
    "trunc": (NotImplementedError, "\"trunc_vml_cpu\" not implemented for 'Bool'"),
}


def _elementwise_infer(name, result=None):
    """Broadcast the operands; the result keeps their (already promoted) dtype unless `result` says otherwise."""

    no_bool, float_only = _NO_BOOL.get(name), name in _FLOAT_ONLY

    def infer(*types, **attrs):
        shape = types[0].shape
        for t in types:
            if t.shape != shape:
                shape = broadcast_shapes(name, *(t.shape for t in types))
                break
        dtype = result or types[-1].dtype
        if no_bool and types[0].dtype is dt.bool_:
            raise no_bool[0](no_bool[1])
        if name == "where" and types[0].dtype is not dt.bool_:
            raise OpError(f"where: expected condition to be a boolean tensor, but got a tensor with dtype "
                          f"{types[0].dtype.name}")
        if float_only and not dtype.is_floating_point:
            raise OpError(f"{name}: expected a floating-point tensor, got {dtype.name}")
        on = types[-1]
        for t in types:
            if t.device.type != "cpu":  # a CPU 0-d operand joins a GPU one
                on = t
                break
        return TensorType(shape, dtype, on.device)

    return infer


def _define(name, impl, expr, grad=None, save_inputs=(), save_outputs=(), result=None, nary=1, check=None):
    promote = tuple(range(1, nary)) if name == "where" else tuple(range(nary))
    register(OpDef(name, "elementwise", _elementwise_infer(name, result), impl, grad, save_inputs, save_outputs,
                   promote=promote, check=check, float_compute=name in _FLOAT_ONLY, expr=expr))


def _cmp(name, fn, expr):
    _define(name, fn, expr, result=dt.bool_, nary=2)


_QUIET = threading.local()


def _quiet_context():
    """A context in which NumPy ignores floating-point errors. Running in it costs ~0.1 µs, entering np.errstate
    ~1.7 µs: the price of a whole small eager op."""
    ctx = contextvars.copy_context()
    ctx.run(np.errstate(all="ignore").__enter__)  # the errstate stays set inside ctx only
    return ctx


def _safe(fn):
    """Run a NumPy ufunc without its divide/overflow warnings: IEEE results (inf/nan) are what PyTorch gives."""

    def run(*arrays):
        ctx = getattr(_QUIET, "ctx", None)
        if ctx is None:
            ctx = _QUIET.ctx = _quiet_context()  # one per thread: a context runs in one thread at a time
        return ctx.run(fn, *arrays)

    return run


def _sign(x):
    """PyTorch's sign, (0 < x) - (x < 0): NaN gives 0 (and so does abs's gradient there); bool is its own sign."""
    if x.dtype == np.bool_:
        return x.copy()
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


def _zero_grad(c, g):
    """A zero gradient shaped like g that stays 0 where g is NaN or inf (g * 0 would not), as PyTorch's zeros_like."""
    zero = op.mul(g, 0.0)
    return (op.where(op.eq(zero, 0.0), zero, 0.0),)


def _erf_slope(x):
    """d erf / dx = 2 / sqrt(pi) * exp(-x^2)."""
    return op.mul(op.exp(op.neg(op.mul(x, x))), 1.1283791670955126)


# ---- unary ------------------------------------------------------------------------------------------------------
_define("neg", np.negative, "(-{0})", lambda c, g: (op.neg(g),))
_define("abs", np.abs, "abs({0})", lambda c, g: (op.mul(g, op.sign(c.inputs[0])),), save_inputs=(0,))
_define("sign", _sign, "sign({0})", _zero_grad)
_define("exp", _safe(np.exp), "math.exp({0})", lambda c, g: (op.mul(g, c.outputs[0]),), save_outputs=(0,))
_define("log", _safe(np.log), "math.log({0})", lambda c, g: (op.div(g, c.inputs[0]),), save_inputs=(0,))
_define("expm1", _safe(np.expm1), "math.expm1({0})", lambda c, g: (op.mul(g, op.add(c.outputs[0], 1.0)),),
        save_outputs=(0,))
_define("log1p", _safe(np.log1p), "math.log1p({0})", lambda c, g: (op.div(g, op.add(c.inputs[0], 1.0)),),
        save_inputs=(0,))
_define("log2", _safe(np.log2), "math.log2({0})",
        lambda c, g: (op.div(g, op.mul(c.inputs[0], 0.6931471805599453)),), save_inputs=(0,))
_define("log10", _safe(np.log10), "math.log10({0})",
        lambda c, g: (op.div(g, op.mul(c.inputs[0], 2.302585092994046)),), save_inputs=(0,))
_define("sqrt", _safe(np.sqrt), "math.sqrt({0})",
        lambda c, g: (op.div(g, op.mul(c.outputs[0], 2.0)),), save_outputs=(0,))
_define("rsqrt", _safe(lambda x: 1 / np.sqrt(x)), "(1.0 / math.sqrt({0}))",
        lambda c, g: (op.mul(op.mul(g, -0.5), op.pow(c.outputs[0], 3.0)),), save_outputs=(0,))
_define("sin", np.sin, "math.sin({0})", lambda c, g: (op.mul(g, op.cos(c.inputs[0])),), save_inputs=(0,))
_define("cos", np.cos, "math.cos({0})", lambda c, g: (op.neg(op.mul(g, op.sin(c.inputs[0]))),), save_inputs=(0,))
_define("tanh", np.tanh, "math.tanh({0})",
        lambda c, g: (op.mul(g, op.sub(1.0, op.mul(c.outputs[0], c.outputs[0]))),), save_outputs=(0,))
_define("sigmoid", _safe(lambda x: (1 / (1 + np.exp(-x))).astype(x.dtype, copy=False)),
        "(1.0 / (1.0 + math.exp(-{0})))",
        lambda c, g: (op.mul(op.mul(g, c.outputs[0]), op.sub(1.0, c.outputs[0])),), save_outputs=(0,))
_define("erf", _safe(special.erf), "math.erf({0})", lambda c, g: (op.mul(g, _erf_slope(c.inputs[0])),),
        save_inputs=(0,))
_define("erfc", _safe(special.erfc), "math.erfc({0})", lambda c, g: (op.neg(op.mul(g, _erf_slope(c.inputs[0]))),),
        save_inputs=(0,))
_define("relu", lambda x: np.where(x < 0, x.dtype.type(0), x), "max({0}, 0)",
        lambda c, g: (op.where(op.le(c.outputs[0], 0), 0.0, g),), save_outputs=(0,))  # NaN passes g, as in PyTorch
_define("floor", np.floor, "math.floor({0})", _zero_grad)
_define("trunc", np.trunc, "math.trunc({0})", _zero_grad)
_define("copy", lambda x: np.copy(x, order="C"), "{0}", lambda c, g: (g,))
# detach(x) = x with no gradient: what Tensor.detach() records in a trace, so graph autodiff (a compiled module's
# backward) stops there as eager autograd does; simplify removes it once the gradients are built
_define("detach", lambda x: x, "{0}")
_define("logical_not", np.logical_not, "(not {0})", result=dt.bool_)


def _narrow(x, np_dtype):
    """float64 reaches float16 through float32, as PyTorch's double -> half (the same double rounding)."""
    if x.dtype == np.float64 and np_dtype == np.float16:
        x = x.astype(np.float32)
    return x.astype(np_dtype, copy=False)


_quiet_narrow = _safe(_narrow)


def _cast_impl(x, dtype):
    """Overflow to inf is IEEE's answer (as PyTorch), so no warning; bfloat16 is rounded by the backend."""
    return _quiet_narrow(x, dtype.np)


def _cast_infer(t, dtype):
    return t.with_(dtype=dtype)


register(OpDef("cast", "elementwise", _cast_infer, _cast_impl,
               lambda c, g: (op.cast(g, dtype=c.in_types[0].dtype) if c.in_types[0].dtype.is_floating_point
                             else None,),
               expr="{dtype}({0})"))


def _clamp_impl(x, min=None, max=None):
    return np.clip(x, min, max) if min is not None or max is not None else x.copy()


def _clamp_grad(c, g):
    x, lo, hi = c.inputs[0], c.attrs.get("min"), c.attrs.get("max")
    mask = None
    for part in ([] if lo is None else [op.ge(x, lo)]) + ([] if hi is None else [op.le(x, hi)]):
        mask = part if mask is None else op.logical_and(mask, part)
    return (g if mask is None else op.where(mask, g, 0.0),)  # 0, not g * 0, outside: g may be NaN


register(OpDef("clamp", "elementwise", _elementwise_infer("clamp"), _clamp_impl, _clamp_grad, save_inputs=(0,),
               promote=(0,), expr="min(max({0}, {min}), {max})"))


def _clamp_tensor_impl(x, lo, hi, has_min, has_max):
    """min(max(x, lo), hi) over the bounds present (an absent one is passed as x and ignored), NaN propagating."""
    out = np.maximum(x, lo) if has_min else x.copy()
    return np.minimum(out, hi) if has_max else out


def _clamp_tensor_grad(c, g):
    """PyTorch's clamp_backward_min_max: x gets g where lo <= x <= hi; lo where x < lo (and lo < hi when both are
    given); hi where x > hi (or hi < lo). Ties go to x, and a NaN anywhere matches nothing."""
    x, lo, hi = c.inputs
    has_min, has_max = c.attrs["has_min"], c.attrs["has_max"]
    below = above = None
    if has_min and has_max:
        inside = op.logical_and(op.ge(x, lo), op.le(x, hi))
        below = op.logical_and(op.lt(x, lo), op.lt(lo, hi))
        above = op.logical_or(op.gt(x, hi), op.lt(hi, lo))
    elif has_min:
        inside, below = op.ge(x, lo), op.lt(x, lo)
    else:
        inside, above = op.le(x, hi), op.gt(x, hi)
    picks = (inside, below, above)
    return tuple(None if pick is None or not need else unbroadcast(op.where(pick, g, 0.0), t.shape)
                 for pick, need, t in zip(picks, c.needs_input_grad, c.in_types))


# expr is the generic form; the CPU and CUDA codegens write absent bounds out and propagate NaN (clamp_tensor_expr)
register(OpDef("clamp_tensor", "elementwise", _elementwise_infer("clamp_tensor"), _clamp_tensor_impl,
               _clamp_tensor_grad, save_inputs=(0, 1, 2), promote=(0, 1, 2), expr="min(max({0}, {1}), {2})"))


# ---- binary -----------------------------------------------------------------------------------------------------
def _add_grad(c, g):
    return unbroadcast(g, c.in_types[0].shape), unbroadcast(g, c.in_types[1].shape)


def _sub_grad(c, g):
    return unbroadcast(g, c.in_types[0].shape), unbroadcast(op.neg(g), c.in_types[1].shape)


def _mul_grad(c, g):
    a, b = c.inputs
    return (unbroadcast(op.mul(g, b), c.in_types[0].shape) if c.needs_input_grad[0] else None,
            unbroadcast(op.mul(g, a), c.in_types[1].shape) if c.needs_input_grad[1] else None)


def _div_grad(c, g):
    a, b = c.inputs
    ga = unbroadcast(op.div(g, b), c.in_types[0].shape) if c.needs_input_grad[0] else None
    gb = None
    if c.needs_input_grad[1]:
        gb = unbroadcast(op.neg(op.div(op.mul(g, a), op.mul(b, b))), c.in_types[1].shape)
    return ga, gb


def _pow_grad(c, g):
    a, b = c.inputs
    ga = gb = None
    if c.needs_input_grad[0]:  # PyTorch's rule: 0 where the exponent is 0 (not 0 * x ** -1, NaN at x = 0)
        ga = op.where(op.eq(b, 0.0), 0.0, op.mul(op.mul(g, b), op.pow(a, op.sub(b, 1.0))))
        ga = unbroadcast(ga, c.in_types[0].shape)
    if c.needs_input_grad[1]:  # and 0 where a = 0 and b >= 0 (not g * 0 * log(0))
        at_zero = op.logical_and(op.eq(a, 0.0), op.ge(b, 0.0))
        gb = op.where(at_zero, 0.0, op.mul(op.mul(g, c.outputs[0]), op.log(a)))
        gb = unbroadcast(gb, c.in_types[1].shape)
    return ga, gb


def _minmax_grad(wins):
    """maximum/minimum, PyTorch's rule: an operand gets g unless the other one wins (then 0), g / 2 on ties; a NaN
    on either side wins nothing and ties nothing, so both operands get the whole g."""

    def grad(c, g):
        a, b = c.inputs
        halved = op.where(op.eq(a, b), op.mul(g, 0.5), g)
        return (unbroadcast(op.where(wins(b, a), 0.0, halved), c.in_types[0].shape),
                unbroadcast(op.where(wins(a, b), 0.0, halved), c.in_types[1].shape))

    return grad


def _pow_impl(a, b):
    """IEEE results for floats; integers as PyTorch computes them, where a negative exponent gives 1 for base 1,
    +-1 for base -1 and 0 otherwise (a negative Python-number exponent is refused by the frontend)."""
    with np.errstate(all="ignore"):
        if a.dtype.kind == "f":
            return np.power(a, b)
        negative = b < 0
        out = np.power(a, np.where(negative, 0, b).astype(b.dtype))
    reciprocal = np.where(a == 1, 1, np.where(a == -1, 1 - 2 * (b % 2), 0))
    return np.where(negative, reciprocal, out).astype(out.dtype)


_define("add", _safe(np.add), "({0} + {1})", _add_grad, nary=2)
def _sub_check(a, b):
    """PyTorch refuses bool operands of sub before promoting them (int - bool would otherwise give an int)."""
    if a is dt.bool_ and b is dt.bool_:
        raise OpError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                      "`logical_xor()` operator instead.")
    if dt.bool_ in (a, b):
        raise OpError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to "
                      "invert a mask, use the `~` or `logical_not()` operator instead.")


_define("sub", _safe(np.subtract), "({0} - {1})", _sub_grad, nary=2, check=_sub_check)
def _save_other(needs):
    """mul: each operand is needed only for the other one's gradient."""
    return tuple(i for i, other in ((0, 1), (1, 0)) if needs[other])


def _save_div(needs):
    """div: the divisor is always needed; the dividend only for the divisor's gradient."""
    return ((0,) if needs[1] else ()) + (1,)


_define("mul", _safe(np.multiply), "({0} * {1})", _mul_grad, save_inputs=_save_other, nary=2)
_define("div", _safe(np.true_divide), "({0} / {1})", _div_grad, save_inputs=_save_div, nary=2)
_define("pow", _pow_impl, "({0} ** {1})", _pow_grad, save_inputs=(0, 1), save_outputs=(0,), nary=2)
_define("maximum", np.maximum, "max({0}, {1})", _minmax_grad(lambda a, b: op.gt(a, b)), save_inputs=(0, 1), nary=2)
_define("minimum", np.minimum, "min({0}, {1})", _minmax_grad(lambda a, b: op.lt(a, b)), save_inputs=(0, 1), nary=2)
_define("logical_and", np.logical_and, "({0} and {1})", result=dt.bool_, nary=2)
_define("logical_or", np.logical_or, "({0} or {1})", result=dt.bool_, nary=2)
_cmp("eq", np.equal, "({0} == {1})")
_cmp("ne", np.not_equal, "({0} != {1})")
_cmp("lt", np.less, "({0} < {1})")
_cmp("le", np.less_equal, "({0} <= {1})")
_cmp("gt", np.greater, "({0} > {1})")
_cmp("ge", np.greater_equal, "({0} >= {1})")


def _where_grad(c, g):
    cond = c.inputs[0]  # the unpicked side gets 0, not g * 0 (NaN where g is)
    return (None,
            unbroadcast(op.where(cond, g, 0.0), c.in_types[1].shape) if c.needs_input_grad[1] else None,
            unbroadcast(op.where(cond, 0.0, g), c.in_types[2].shape) if c.needs_input_grad[2] else None)


_define("where", np.where, "({1} if {0} else {2})", _where_grad, save_inputs=(0,), nary=3)
