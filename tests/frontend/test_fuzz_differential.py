"""Differential fuzzing: hypothesis draws small programs (chains of 2-6 ops: elementwise, reductions, softmax, matmul,
movement, indexing, casts) with inputs full of NaN, inf, 0 and size-0/size-1 dims, and runs each in graphnet eager
against PyTorch (when installed) and in graphnet compiled against graphnet eager. Values (NaN equal to NaN), dtypes,
shapes, whether the program raises (and the kind of exception), and float64 gradients of a sum must all agree.

The budget is fixed (derandomize=True, fixed max_examples), so CI runs the same programs every time."""
import operator
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphnet

DTYPES = ("float32", "float64", "int64", "bool")
SPECIAL = (float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0, 100.0)
TOLERANCE = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-9, atol=1e-12)}


class Step:
    """One op of a program: `apply(lib, x)` runs it with graphnet or torch as `lib`; the repr names it for reports."""

    def __init__(self, label, apply):
        self.label, self.apply = label, apply

    def __repr__(self):
        return self.label


def _tensor(lib, array):
    """A numpy operand as a `lib` tensor of the same dtype and shape (size-0 shapes included)."""
    return lib.tensor(array.tolist(), dtype=getattr(lib, array.dtype.name)).reshape(array.shape)


# ---- inputs -----------------------------------------------------------------------------------------------------
shapes = st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)


def _elements(dtype):
    """Element values: small ints, both bools, and floats with NaN, +-inf, +-0 and a large value in the mix."""
    if dtype == "bool":
        return st.booleans()
    if dtype == "int64":
        return st.integers(-3, 3)
    return st.one_of(st.sampled_from(SPECIAL), st.floats(-4, 4, width=32))


@st.composite
def arrays(draw, shape, dtype):
    """A numpy array of `shape` and `dtype` with special values (NaN, +-inf, +-0) mixed in."""
    flat = draw(st.lists(_elements(dtype), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array(flat, dtype=dtype).reshape(shape)


@st.composite
def broadcastable(draw, shape, grow=True):
    """A shape that broadcasts with `shape`: each trailing dim kept or made 1, leading dims dropped or (with `grow`)
    one added."""
    dims = [draw(st.sampled_from((n, 1))) for n in shape][draw(st.integers(0, len(shape))):]
    return tuple(([draw(st.integers(1, 2))] if grow and draw(st.booleans()) and len(dims) < 3 else []) + dims)


def _dim(draw, ndim):
    """A dim in PyTorch's accepted range, negative ones included (a 0-d tensor takes 0 and -1)."""
    return draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))


# ---- the op table: each entry draws its parameters for an input of (shape, dtype) and returns a Step ---------------
UNARY = ("neg", "abs", "exp", "log", "sqrt", "sin", "tanh", "sigmoid", "relu", "sign", "floor", "trunc")
BINARY = ("add", "sub", "mul", "div", "maximum", "minimum", "pow", "eq", "lt")
SCALAR_OPERATORS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
                    "pow": operator.pow, "eq": operator.eq, "lt": operator.lt}
REDUCTIONS = ("sum", "mean", "amax", "amin", "logsumexp")


def _unary(draw, shape, dtype):
    name = draw(st.sampled_from(UNARY))
    return Step(name, lambda lib, x: getattr(lib, name)(x))


def _operand_dtypes(name):
    """Known difference left out: PyTorch's own pow backward fails on a bool exponent (it subtracts 1 from a bool, or
    hits an INTERNAL ASSERT for pow(True, x)), so pow gets no bool operand."""
    return DTYPES[:-1] if name == "pow" else DTYPES


def _binary_tensor(draw, shape, dtype):
    name = draw(st.sampled_from(BINARY))
    other = draw(arrays(draw(broadcastable(shape)), draw(st.sampled_from(_operand_dtypes(name)))))
    flip = draw(st.booleans())
    args = (lambda lib, x: (_tensor(lib, other), x)) if flip else (lambda lib, x: (x, _tensor(lib, other)))
    return Step(f"{name}({'other, x' if flip else 'x, other'}) other={other!r}",
                lambda lib, x: getattr(lib, name)(*args(lib, x)))


def _binary_scalar(draw, shape, dtype):
    name = draw(st.sampled_from(sorted(SCALAR_OPERATORS)))
    scalar = draw(st.one_of(st.sampled_from(SPECIAL), st.integers(-2, 3), *[st.booleans()] * (name != "pow")))
    fn, flip = SCALAR_OPERATORS[name], draw(st.booleans())
    return Step(f"{name}({scalar!r}, x)" if flip else f"{name}(x, {scalar!r})",
                lambda lib, x: fn(scalar, x) if flip else fn(x, scalar))


def _clamp(draw, shape, dtype):
    """clamp by numbers (or None), or by broadcastable tensors of x's dtype (where the gradient rule is clamp's own)."""
    if draw(st.booleans()):  # torch bug: clamp's backward raises where the bounds broadcast x to a larger shape
        lo, hi = (draw(arrays(draw(broadcastable(shape, grow=False)), dtype)) for _ in range(2))
        return Step(f"clamp(x, {lo!r}, {hi!r})", lambda lib, x: lib.clamp(x, _tensor(lib, lo), _tensor(lib, hi)))
    bounds = st.one_of(st.none(), st.sampled_from(SPECIAL), st.integers(-2, 2))
    lo, hi = draw(bounds), draw(bounds)
    return Step(f"clamp(x, {lo}, {hi})", lambda lib, x: lib.clamp(x, lo, hi))


def _where(draw, shape, dtype):
    other = draw(arrays(draw(broadcastable(shape)), draw(st.sampled_from(DTYPES))))
    return Step(f"where(x > 0, x, {other!r})", lambda lib, x: lib.where(x > 0, x, _tensor(lib, other)))


def _reduction(draw, shape, dtype):
    name, keepdim, ndim = draw(st.sampled_from(REDUCTIONS)), draw(st.booleans()), len(shape)
    some = st.lists(st.integers(-ndim, ndim - 1), max_size=ndim, unique=True).map(tuple) if ndim else st.just(())
    dims = draw(st.one_of(st.just(_dim(draw, ndim)), some, st.none()))
    if name == "logsumexp" and not dims:  # torch bug: logsumexp(x, ()) of a 1-d x raises, so name every dim
        dims = tuple(range(ndim))
    if dims is None:
        return Step(f"{name}(x)", lambda lib, x: getattr(lib, name)(x))
    return Step(f"{name}(x, dim={dims}, keepdim={keepdim})",
                lambda lib, x: getattr(lib, name)(x, dims, keepdim=keepdim))


def _max_with_dim(draw, shape, dtype):
    dim, part = _dim(draw, len(shape)), draw(st.sampled_from(("values", "indices")))
    return Step(f"max(x, {dim}).{part}", lambda lib, x: getattr(lib.max(x, dim), part))


def _softmax(draw, shape, dtype):
    name, dim = draw(st.sampled_from(("softmax", "log_softmax"))), _dim(draw, len(shape))
    return Step(f"{name}(x, {dim})", lambda lib, x: getattr(lib, name)(x, dim))


def _matmul(draw, shape, dtype):
    inner = shape[-1] if shape else 1
    other = draw(arrays(draw(st.sampled_from(((inner,), (inner, draw(st.integers(0, 2)))))), dtype))
    if dtype == "bool":
        # Known difference left out: bool matmul raises NotImplementedError in both, except that PyTorch returns an
        # empty or all-False result where no kernel runs (an empty output, inner dim 0) and graphnet still raises;
        # and against a float operand PyTorch raises NotImplementedError (batched) or RuntimeError (2-d) by shape.
        return Step(f"matmul(x.long(), {other!r}.long())",
                    lambda lib, x: lib.matmul(x.long(), _tensor(lib, other).long()))
    return Step(f"matmul(x, {other!r})", lambda lib, x: lib.matmul(x, _tensor(lib, other)))


def _movement(draw, shape, dtype):
    ndim = len(shape)
    perm = draw(st.permutations(range(ndim)))
    d0, d1 = _dim(draw, ndim), _dim(draw, ndim)
    choices = {"reshape(-1)": lambda x: x.reshape(-1), "reshape(1, *shape)": lambda x: x.reshape(1, *shape),
               f"permute{tuple(perm)}": lambda x: x.permute(perm), "flatten()": lambda x: x.flatten(),
               f"transpose({d0}, {d1})": lambda x: x.transpose(d0, d1), f"unsqueeze({d0})": lambda x: x.unsqueeze(d0),
               f"squeeze({d0})": lambda x: x.squeeze(d0)}
    label = draw(st.sampled_from(sorted(choices)))
    return Step(label, lambda lib, x: choices[label](x))


def _index(draw, shape, dtype):
    n = shape[0] if shape else 0
    i, j = draw(st.integers(-n - 1, n)), draw(st.integers(-n - 1, n + 1))
    choices = {f"x[{i}]": lambda x: x[i], f"x[{i}:{j}]": lambda x: x[i:j], "x[None]": lambda x: x[None],
               "x[..., -1]": lambda x: x[..., -1], f"x[:, {i}]": lambda x: x[:, i]}
    label = draw(st.sampled_from(sorted(choices)))
    return Step(label, lambda lib, x: choices[label](x))


def _cast(draw, shape, dtype):
    to = draw(st.sampled_from(DTYPES))
    return Step(f"x.to({to})", lambda lib, x: x.to(getattr(lib, to)))


KINDS = (_unary, _binary_tensor, _binary_scalar, _clamp, _where, _reduction, _max_with_dim, _softmax, _matmul,
         _movement, _index, _cast)


def _probe(step, shape, dtype):
    """The (shape, dtype) after `step` on zeros of (shape, dtype) in graphnet, or None where graphnet raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = step.apply(graphnet, graphnet.zeros(*shape, dtype=getattr(graphnet, dtype)))
    except Exception:  # noqa: BLE001 - the program ends here; running it compares the error with torch's
        return None
    return tuple(out.shape), out.dtype.name


@st.composite
def programs(draw):
    """(input array, steps, tolerance): 2-6 steps, each drawn for the shape and dtype the previous one produced; a
    step that raises ends the program (the error itself is what gets compared). The tolerance is float32's when any
    value along the way is float32: its last-bit differences (tanh, exp) carry over into a later float64 cast."""
    shape, dtype = draw(shapes), draw(st.sampled_from(DTYPES))
    x, steps, seen = draw(arrays(shape, dtype)), [], {dtype}
    for _ in range(draw(st.integers(2, 6))):
        step = draw(st.sampled_from(KINDS))(draw, shape, dtype)
        steps.append(step)
        spec = _probe(step, shape, dtype)
        if spec is None:
            break
        shape, dtype = spec
        seen.add(dtype)
    return x, steps, TOLERANCE["float32" if "float32" in seen else "float64"]


# ---- running and comparing --------------------------------------------------------------------------------------
def _error_kind(exc):
    """The builtin exception class an error is (graphnet's OpError and torch's errors are RuntimeError subclasses)."""
    return next(c for c in type(exc).__mro__ if c.__module__ == "builtins")


def _outcome(lib, fn, x_np):
    """Run fn(lib, x), then backward on the sum where the result requires grad (x does when float64): ("raises",
    error kind), or ("ok", values, dtype name, shape, requires_grad, the gradient of x or None)."""
    x = _tensor(lib, x_np)
    if x_np.dtype == np.float64:
        x.requires_grad_(True)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = fn(lib, x)
            if out.requires_grad:
                out.sum().backward()
    except Exception as exc:  # noqa: BLE001 - comparing which kind of error each library raises
        return ("raises", _error_kind(exc))
    grad = None if x.grad is None else x.grad.numpy()
    return ("ok", out.detach().numpy(), str(out.dtype).split(".")[-1], tuple(out.shape), out.requires_grad, grad)


def _assert_same(got, want, tol):
    """Same outcome: the same error kind, or equal dtypes, shapes, values (NaN == NaN, within `tol` for floats) and
    gradients."""
    assert got[0] == want[0], f"graphnet {got[:2]} but the reference {want[:2]}"
    if got[0] == "raises":
        assert got[1] is want[1], f"graphnet raised {got[1].__name__} but the reference {want[1].__name__}"
        return
    _, value, dtype, shape, requires_grad, grad = got
    assert (dtype, shape, requires_grad) == want[2:5]
    if dtype in TOLERANCE:
        np.testing.assert_allclose(value, want[1], equal_nan=True, **tol)
    else:
        np.testing.assert_array_equal(value, want[1])
    assert (grad is None) == (want[5] is None)
    if grad is not None:
        np.testing.assert_allclose(grad, want[5], equal_nan=True, **tol)


def _chain(steps):
    """The program as one function of (lib, x)."""

    def run(lib, x):
        for step in steps:
            x = step.apply(lib, x)
        return x

    return run


FUZZ = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


@settings(max_examples=400, **FUZZ)
@given(programs())
def test_eager_matches_torch(program):
    torch = pytest.importorskip("torch")
    x, steps, tol = program
    run = _chain(steps)
    _assert_same(_outcome(graphnet, run, x), _outcome(torch, run, x), tol)


class _Program(graphnet.nn.Module):
    """A program as a module: a compiled module's outputs carry its compiled backward (a compiled function's
    outputs are plain tensors: it is meant to hold its backward inside)."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def forward(self, x):
        return self.run(graphnet, x)


def _compiled(run):
    """`run` through graphnet.compile with fullgraph=True (a graph break raises instead of running eagerly)."""
    compiled = graphnet.compile(_Program(run), fullgraph=True)
    return lambda lib, t: compiled(t)


@settings(max_examples=20, **FUZZ)  # each example builds kernels: compiling is the slow part
@given(programs())
def test_compiled_matches_eager(program):
    x, steps, tol = program
    run = _chain(steps)
    _assert_same(_outcome(graphnet, _compiled(run), x), _outcome(graphnet, run, x), tol)
