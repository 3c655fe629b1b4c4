"""Eager differences from PyTorch 2.13 that differential fuzzing found (issue 13, item 5): softmax/logsumexp over
size-0 dims, subtraction with bool operands, and the maximum/minimum/relu gradients at NaN. Each case is checked
against PyTorch's recorded answer, against real torch where it is installed, and compiled against eager."""
import numpy as np
import pytest

import graphnet

NAN, INF = float("nan"), float("inf")


def _run(lib, fn, shape, dtype="float32"):
    """fn on zeros of `shape` in `lib` (graphnet or torch): (shape, dtype name, values) of the result."""
    out = fn(lib, lib.zeros(*shape, dtype=getattr(lib, dtype)))
    return tuple(out.shape), str(out.dtype).split(".")[-1], out.detach().numpy()


# (name, fn, input shape, result shape, result values as PyTorch 2.13 gives them)
EMPTY_CASES = [
    ("softmax over the empty dim", lambda t, x: t.softmax(x, 0), (0, 3), (0, 3), []),
    ("softmax beside the empty dim", lambda t, x: t.softmax(x, 0), (3, 0), (3, 0), []),
    ("softmax of an empty vector", lambda t, x: t.softmax(x, 0), (0,), (0,), []),
    ("log_softmax over the empty dim", lambda t, x: t.log_softmax(x, 0), (0, 3), (0, 3), []),
    ("nn.functional.softmax", lambda t, x: t.nn.functional.softmax(x, dim=1), (2, 0), (2, 0), []),
    ("logsumexp over the empty dim", lambda t, x: t.logsumexp(x, 0), (0, 3), (3,), [-INF] * 3),
    ("logsumexp keepdim", lambda t, x: t.logsumexp(x, 0, keepdim=True), (0, 3), (1, 3), [[-INF] * 3]),
    ("logsumexp over all dims", lambda t, x: t.logsumexp(x, (0, 1)), (0, 3), (), -INF),
    ("logsumexp of an empty vector", lambda t, x: t.logsumexp(x, 0), (0,), (), -INF),
    ("logsumexp beside the empty dim", lambda t, x: t.logsumexp(x, 1), (0, 3), (0,), []),
    ("Tensor.logsumexp", lambda t, x: x.logsumexp(-1), (2, 0), (2,), [-INF] * 2),
]


@pytest.mark.parametrize("name,fn,shape,want_shape,want", EMPTY_CASES, ids=[c[0] for c in EMPTY_CASES])
def test_size_zero_dims_give_pytorchs_result(name, fn, shape, want_shape, want):
    got_shape, got_dtype, got = _run(graphnet, fn, shape)
    assert (got_shape, got_dtype) == (want_shape, "float32")
    np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float32).reshape(want_shape))


@pytest.mark.parametrize("name,fn,shape", [c[:3] for c in EMPTY_CASES], ids=[c[0] for c in EMPTY_CASES])
def test_size_zero_dims_match_torch(name, fn, shape):
    torch = pytest.importorskip("torch")
    got, want = _run(graphnet, fn, shape, "float64"), _run(torch, fn, shape, "float64")
    assert got[:2] == want[:2]
    np.testing.assert_array_equal(got[2], want[2])


@pytest.mark.parametrize("name,fn,shape", [c[:3] for c in EMPTY_CASES], ids=[c[0] for c in EMPTY_CASES])
def test_size_zero_dims_compiled_value_and_gradient_match_eager(name, fn, shape):
    x = graphnet.zeros(*shape, dtype=graphnet.float64, requires_grad=True)
    want = fn(graphnet, x)
    got = graphnet.compile(lambda a: fn(graphnet, a))(x)
    assert (got.shape, got.dtype) == (want.shape, want.dtype)
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    got.sum().backward()
    assert x.grad.shape == x.shape


ONE_BOOL = ("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, "
            "use the `~` or `logical_not()` operator instead.")
TWO_BOOLS = ("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or `logical_xor()` "
             "operator instead.")


def _isub(t, a, b):
    a -= b
    return a


# (name, fn(lib, tensor), the message PyTorch 2.13 raises)
BOOL_SUBTRACTIONS = [
    ("int - bool", lambda lib, t: t(3) - t(True), ONE_BOOL),
    ("bool - int", lambda lib, t: t([True]) - 1, ONE_BOOL),
    ("float - Python True", lambda lib, t: t(2.0) - True, ONE_BOOL),
    ("bool - float", lambda lib, t: t([True]) - 2.5, ONE_BOOL),
    ("rsub: int - bool tensor", lambda lib, t: 1 - t(True), ONE_BOOL),
    ("rsub: True - int tensor", lambda lib, t: True - t([3]), ONE_BOOL),
    ("torch.sub", lambda lib, t: lib.sub(t(3), t(True)), ONE_BOOL),
    ("torch.subtract", lambda lib, t: lib.subtract(t(True), 1), ONE_BOOL),
    ("torch.rsub", lambda lib, t: lib.rsub(t(3), t(True)), ONE_BOOL),
    ("in-place sub_", lambda lib, t: t(3).sub_(t(True)), ONE_BOOL),
    ("in-place -=", lambda lib, t: _isub(t, t([3]), t([True])), ONE_BOOL),
    ("bool - bool", lambda lib, t: t(True) - t(False), TWO_BOOLS),
    ("True - bool tensor", lambda lib, t: True - t([True]), TWO_BOOLS),
    ("empty bool - bool", lambda lib, t: t([], dtype=lib.bool) - t([], dtype=lib.bool), TWO_BOOLS),
]


@pytest.mark.parametrize("name,fn,message", BOOL_SUBTRACTIONS, ids=[c[0] for c in BOOL_SUBTRACTIONS])
def test_subtraction_with_a_bool_operand_raises_pytorchs_error(name, fn, message):
    with pytest.raises(RuntimeError) as info:
        fn(graphnet, graphnet.tensor)
    assert str(info.value) == message


@pytest.mark.parametrize("name,fn,message", BOOL_SUBTRACTIONS, ids=[c[0] for c in BOOL_SUBTRACTIONS])
def test_subtraction_with_a_bool_operand_matches_torch(name, fn, message):
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError) as info:
        fn(torch, torch.tensor)
    assert str(info.value) == message


def test_bool_subtraction_is_refused_while_tracing_too():
    compiled = graphnet.compile(lambda a, b: a - b)
    with pytest.raises(RuntimeError) as info:
        compiled(graphnet.tensor([1, 2]), graphnet.tensor([True, False]))
    assert str(info.value) == ONE_BOOL


# Operands where NaN is on either side, both sides, ties (0 and -0 too), infinite ties and a strict winner.
A = [NAN, 1.0, NAN, 2.0, 0.0, INF, 2.0, 1.0]
B = [1.0, NAN, NAN, 2.0, -0.0, INF, 1.0, 3.0]
# (name, fn, PyTorch 2.13's gradient of fn(a, b).sum() for a, for b)
MINMAX_GRADS = [
    ("maximum", lambda lib, a, b: lib.maximum(a, b), [1, 1, 1, .5, .5, .5, 1, 0], [1, 1, 1, .5, .5, .5, 0, 1]),
    ("minimum", lambda lib, a, b: lib.minimum(a, b), [1, 1, 1, .5, .5, .5, 0, 1], [1, 1, 1, .5, .5, .5, 1, 0]),
    ("max(a, b)", lambda lib, a, b: lib.max(a, b), [1, 1, 1, .5, .5, .5, 1, 0], [1, 1, 1, .5, .5, .5, 0, 1]),
    ("Tensor.min(b)", lambda lib, a, b: a.min(b), [1, 1, 1, .5, .5, .5, 0, 1], [1, 1, 1, .5, .5, .5, 1, 0]),
    ("relu(a * b)", lambda lib, a, b: lib.relu(a * b), [1, NAN, NAN, 2, 0, INF, 1, 3], [NAN, 1, NAN, 2, 0, INF, 2, 1]),
]


def _grads(lib, fn):
    """(value, grad of a, grad of b) of fn(a, b).sum() in `lib`, float64."""
    a, b = (lib.tensor(v, dtype=lib.float64, requires_grad=True) for v in (A, B))
    out = fn(lib, a, b)
    out.sum().backward()
    return out.detach().numpy(), a.grad.numpy(), b.grad.numpy()


@pytest.mark.parametrize("name,fn,want_a,want_b", MINMAX_GRADS, ids=[c[0] for c in MINMAX_GRADS])
def test_nan_operands_get_pytorchs_gradient(name, fn, want_a, want_b):
    _, got_a, got_b = _grads(graphnet, fn)
    np.testing.assert_array_equal(got_a, want_a)
    np.testing.assert_array_equal(got_b, want_b)


@pytest.mark.parametrize("name,fn", [c[:2] for c in MINMAX_GRADS], ids=[c[0] for c in MINMAX_GRADS])
def test_nan_operand_values_and_gradients_match_torch(name, fn):
    torch = pytest.importorskip("torch")
    for got, want in zip(_grads(graphnet, fn), _grads(torch, fn)):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got[got == 0]), np.signbit(want[want == 0]))  # -0.0 vs 0.0


@pytest.mark.parametrize("name,fn", [c[:2] for c in MINMAX_GRADS], ids=[c[0] for c in MINMAX_GRADS])
def test_nan_operand_gradients_compiled_match_eager(name, fn):
    compiled = graphnet.compile(lambda a, b: fn(graphnet, a, b))
    for got, want in zip(_grads(graphnet, lambda lib, a, b: compiled(a, b)), _grads(graphnet, fn)):
        np.testing.assert_array_equal(got, want)


def test_relu_keeps_negative_zero_as_pytorch_does():
    out = graphnet.relu(graphnet.tensor([-0.0, -1.0, 0.0]))
    np.testing.assert_array_equal(np.signbit(out.numpy()), [True, False, False])


# clamp by tensor bounds: PyTorch's own rule (ties go to x, NaN matches nothing), not maximum's then minimum's
CLAMP_X = [NAN, 1.0, 5.0, 2.0, 0.0, 3.0, 1.0, 2.0]
CLAMP_LO = [0.0, NAN, 0.0, 2.0, 0.0, 3.0, 2.0, 0.0]
CLAMP_HI = [3.0, 3.0, 3.0, 2.0, 0.0, 1.0, 1.0, 2.0]
# (name, fn, PyTorch 2.13's gradients of x, lo, hi; None: no gradient)
CLAMP_GRADS = [
    ("clamp(x, lo, hi)", lambda t, x, lo, hi: t.clamp(x, lo, hi),
     [0, 0, 0, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 1, 1, 0]),
    ("clamp(x, min=lo)", lambda t, x, lo, hi: t.clamp(x, min=lo), [0, 0, 1, 1, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0, 1, 0],
     None),
    ("x.clamp_max(hi)", lambda t, x, lo, hi: x.clamp_max(hi), [0, 1, 0, 1, 1, 0, 1, 1], None, [0, 0, 1, 0, 0, 1, 0, 0]),
]


def _clamp_run(lib, fn):
    """[value, grad of x, grad of lo, grad of hi] of fn(lib, x, lo, hi).sum(), float64."""
    x, lo, hi = (lib.tensor(v, dtype=lib.float64, requires_grad=True) for v in (CLAMP_X, CLAMP_LO, CLAMP_HI))
    out = fn(lib, x, lo, hi)
    out.sum().backward()
    return [out.detach().numpy()] + [None if t.grad is None else t.grad.numpy() for t in (x, lo, hi)]


def _assert_grads(got, want):
    """Equal arrays (NaN == NaN) pairwise, None (no gradient) where the other is None."""
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("name,fn,want_x,want_lo,want_hi", CLAMP_GRADS, ids=[c[0] for c in CLAMP_GRADS])
def test_clamp_by_tensors_gets_pytorchs_gradient(name, fn, want_x, want_lo, want_hi):
    _assert_grads(_clamp_run(graphnet, fn)[1:], (want_x, want_lo, want_hi))


@pytest.mark.parametrize("name,fn", [c[:2] for c in CLAMP_GRADS], ids=[c[0] for c in CLAMP_GRADS])
def test_clamp_by_tensors_values_and_gradients_match_torch(name, fn):
    torch = pytest.importorskip("torch")
    _assert_grads(_clamp_run(graphnet, fn), _clamp_run(torch, fn))


# ---- differences the differential fuzz test (tests/frontend/test_fuzz_differential.py) found ---------------------
# (name, fn(lib), exception class, PyTorch 2.13's message)
FUZZ_ERRORS = [
    ("softmax of int64", lambda t: t.softmax(t.tensor([1, 2]), 0), NotImplementedError,
     "\"softmax_lastdim_kernel_impl\" not implemented for 'Long'"),
    ("log_softmax of bool over dim 0", lambda t: t.log_softmax(t.ones(2, 3, dtype=t.bool), 0), NotImplementedError,
     "\"log_softmax_kernel_impl\" not implemented for 'Bool'"),
    ("abs of bool", lambda t: t.abs(t.tensor([True])), NotImplementedError, "\"abs_cpu\" not implemented for 'Bool'"),
    ("relu of bool", lambda t: t.relu(t.tensor([True])), RuntimeError, "Boolean inputs not supported for relu"),
    ("floor of bool", lambda t: t.floor(t.tensor([True])), NotImplementedError,
     "\"floor_vml_cpu\" not implemented for 'Bool'"),
    ("trunc of bool", lambda t: t.trunc(t.tensor([True])), NotImplementedError,
     "\"trunc_vml_cpu\" not implemented for 'Bool'"),
    ("clamp of bool by tensors", lambda t: t.clamp(t.tensor([True]), t.tensor([False]), t.tensor([True])),
     NotImplementedError, "\"clamp_cpu\" not implemented for 'Bool'"),
    ("amax over an empty dim", lambda t: t.zeros(2, 0).amax(-1), IndexError,
     "amax(): Expected reduction dim -1 to have non-zero size"),
    ("amax of an empty tensor", lambda t: t.zeros(2, 0).amax(), RuntimeError,
     "amax(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the "
     "'dim' argument."),
    ("max over an empty dim names max", lambda t: t.zeros(2, 0).max(-1), IndexError,
     "max(): Expected reduction dim 1 to have non-zero size"),
    ("min of an empty tensor names min", lambda t: t.zeros(2, 0).min(), RuntimeError,
     "min(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the "
     "'dim' argument."),
    ("argmax of an empty tensor", lambda t: t.zeros(0).argmax(), IndexError,
     "argmax(): Expected reduction dim to be specified for input.numel() == 0."),
    ("a repeated reduction dim", lambda t: t.ones(2, 3).sum((1, -1)), RuntimeError,
     "dim 1 appears multiple times in the list of dims"),
    ("int tensor ** negative Python int", lambda t: t.tensor([2, 3]) ** -1, RuntimeError,
     "Integers to negative integer powers are not allowed."),
    ("bool matmul", lambda t: t.ones(2, 2, dtype=t.bool) @ t.ones(2, 2, dtype=t.bool), NotImplementedError, ""),
]


def _builtin_kind(exc):
    """The builtin class an exception is (graphnet's OpError is a RuntimeError, NotImplementedError one too)."""
    return next(c for c in type(exc).__mro__ if c.__module__ == "builtins")


@pytest.mark.parametrize("name,fn,error,message", FUZZ_ERRORS, ids=[c[0] for c in FUZZ_ERRORS])
def test_fuzz_found_errors_have_pytorchs_type_and_wording(name, fn, error, message):
    with pytest.raises(error) as info:
        fn(graphnet)
    assert _builtin_kind(info.value) is error  # a RuntimeError must not be a NotImplementedError, nor the reverse
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("name,fn,error,message", FUZZ_ERRORS, ids=[c[0] for c in FUZZ_ERRORS])
def test_fuzz_found_errors_match_torch(name, fn, error, message):
    torch = pytest.importorskip("torch")
    with pytest.raises(error) as info:
        fn(torch)
    assert _builtin_kind(info.value) is error
    assert str(info.value).startswith(message)


# (name, fn(lib), PyTorch 2.13's values)
FUZZ_VALUES = [
    ("softmax with +inf gives NaN", lambda t: t.softmax(t.tensor([[INF, 1.0], [-INF, 1.0]]), 1), [[NAN, NAN], [0, 1]]),
    ("log_softmax with +inf gives NaN", lambda t: t.log_softmax(t.tensor([[INF, 1.0], [-INF, 1.0]]), 1),
     [[NAN, NAN], [-INF, 0]]),
    ("logsumexp with +inf gives inf", lambda t: t.logsumexp(t.tensor([[INF, 1.0], [-INF, -INF]]), 1), [INF, -INF]),
    ("cross_entropy with a +inf logit", lambda t: t.nn.functional.cross_entropy(
        t.tensor([[INF, 0.0], [0.0, 1.0]]), t.tensor([1, 1]), reduction="none"), [NAN, 0.31326169]),
    ("softmax of an empty int64 keeps its dtype", lambda t: t.softmax(t.zeros(2, 0, dtype=t.int64), 1),
     np.zeros((2, 0), np.int64)),
    ("sign of NaN is 0", lambda t: t.sign(t.tensor([NAN, -0.0, -2.0, 3.0])), [0.0, 0.0, -1.0, 1.0]),
    ("sign of bool", lambda t: t.sign(t.tensor([True, False])), [True, False]),
    ("transpose of a 0-d tensor", lambda t: t.tensor(2.5).transpose(0, -1), 2.5),
    ("int ** negative tensor exponent", lambda t: t.tensor([0, 1, -1, -1, 2, -2, 3]) ** t.tensor([-2, -3, -3, -2, -1,
                                                                                                   -1, 0]),
     [0, 1, -1, 1, 0, 0, 1]),
    ("clamp of int64 by a float bound is float32", lambda t: t.clamp(t.tensor([1, 3]), 0.5, 2), [1.0, 2.0]),
    ("clamp of bool by int bounds is int64", lambda t: t.clamp(t.tensor([True, False]), 1, 2), [1, 1]),
    ("int ** negative exponent, empty result", lambda t: t.zeros(0, 2, dtype=t.int64) ** t.tensor([-1, 2]),
     np.zeros((0, 2), np.int64)),
]


def _value(lib, fn):
    out = fn(lib)
    return str(out.dtype).split(".")[-1], out.numpy()


@pytest.mark.parametrize("name,fn,want", FUZZ_VALUES, ids=[c[0] for c in FUZZ_VALUES])
def test_fuzz_found_values_are_pytorchs(name, fn, want):
    got, want = _value(graphnet, fn)[1], np.asarray(want)
    assert (got.shape, got.dtype.kind) == (want.shape, want.dtype.kind)  # float, int or bool, as PyTorch gives
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("name,fn,want", FUZZ_VALUES, ids=[c[0] for c in FUZZ_VALUES])
def test_fuzz_found_values_match_torch(name, fn, want):
    torch = pytest.importorskip("torch")
    (got_dtype, got), (want_dtype, want) = _value(graphnet, fn), _value(torch, fn)
    assert (got_dtype, got.shape) == (want_dtype, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-6)


# (name, fn(lib, a, b) on float64 a, b, the gradients PyTorch 2.13 gives a and b; None: no gradient)
GRAD_A, GRAD_B = [0.0, 0.0, 0.0, 2.0, NAN], [0.0, 2.0, -1.0, 0.0, 1.0]
FUZZ_GRADS = [
    ("a ** b", lambda t, a, b: a ** b, [0, 0, -INF, 0, 1], [0, 0, -INF, 0.6931471805599453, NAN]),
    ("a ** 0", lambda t, a, b: a ** 0, [0, 0, 0, 0, 0], None),
    ("abs at 0 and NaN", lambda t, a, b: t.abs(a), [0, 0, 0, 1, 0], None),
    # a NaN gradient flowing in (from sqrt of a negative) must not leak into the 0 of an unpicked branch, a clamped
    # element or a piecewise-constant op: PyTorch writes those zeros, it does not multiply by 0
    ("where with a NaN gradient", lambda t, a, b: t.sqrt(t.where(b > 0, a, b) - 1), [0, NAN, 0, 0, NAN],
     [NAN, 0, NAN, NAN, 0]),
    ("clamp with a NaN gradient", lambda t, a, b: t.sqrt(t.clamp(b, 0.5, 1.5) - 1), None, [0, 0, 0, 0, INF]),
    ("sign with a NaN gradient", lambda t, a, b: t.sqrt(t.sign(b) - 2), None, [0, 0, 0, 0, 0]),
]


def _fuzz_grads(lib, fn):
    a, b = (lib.tensor(v, dtype=lib.float64, requires_grad=True) for v in (GRAD_A, GRAD_B))
    fn(lib, a, b).sum().backward()
    return [None if g is None else g.numpy() for g in (a.grad, b.grad)]


@pytest.mark.parametrize("name,fn,want_a,want_b", FUZZ_GRADS, ids=[c[0] for c in FUZZ_GRADS])
def test_fuzz_found_gradients_are_pytorchs(name, fn, want_a, want_b):
    _assert_grads(_fuzz_grads(graphnet, fn), (want_a, want_b))


@pytest.mark.parametrize("name,fn", [c[:2] for c in FUZZ_GRADS], ids=[c[0] for c in FUZZ_GRADS])
def test_fuzz_found_gradients_match_torch(name, fn):
    torch = pytest.importorskip("torch")
    _assert_grads(_fuzz_grads(graphnet, fn), _fuzz_grads(torch, fn))
