"""`bind`: the one dispatch point. Applying a primitive asks the active interpreter to process it, as JAX's
`Primitive.bind` asks the current trace: eager execution and tracing (registered by the frontend) and graph
building (`ir.builder`, used by graph autodiff) all implement `Interpreter.process`. Nothing here imports them.
"""
import numpy as np

from . import dtype as dt
from .opdef import OPS, get_op


class Interpreter:
    """How ops run while this interpreter is active. `operand` is the class of the values it processes (Tensor,
    ir Value); Python numbers among promoting operands become 0-d operands through `scalar`."""

    operand = object

    def process(self, opdef, args, attrs):
        """Apply `opdef` to `args` (already promoted by `promote` where the interpreter wants) with `attrs`."""
        raise NotImplementedError

    def scalar(self, value, dtype, like):
        """A 0-d operand of `dtype` holding the Python number `value`; `like` is an operand of the same op."""
        raise NotImplementedError

    def __enter__(self):
        _STACK.append(self)
        return self

    def __exit__(self, *exc):
        if _STACK[-1] is not self:
            raise RuntimeError(f"{type(self).__name__}: interpreters must be exited in the reverse order of entering")
        _STACK.pop()
        return False


class _Missing(Interpreter):
    def process(self, opdef, args, attrs):
        raise RuntimeError(f"{opdef.name}: no interpreter is registered; `import graphnet` registers the eager one, "
                           "or build a graph inside `with graphnet.ir.builder.GraphBuilder(graph):`")


# The active interpreters, innermost last; the bottom one is the eager interpreter the frontend registers.
_STACK = [_Missing()]


def register_eager(interpreter):
    """Install the interpreter that runs ops when no other is active (the frontend's eager one)."""
    _STACK[0] = interpreter


def current():
    """The interpreter `bind` asks now."""
    return _STACK[-1]


def bind(name, *args, **attrs):
    """Apply the primitive `name` to `args` (operands and, where the op promotes, Python numbers)."""
    opdef = OPS.get(name) or get_op(name)
    return _STACK[-1].process(opdef, args, attrs)


class _OpNamespace:
    """`op.mul(a, b)` is `bind("mul", a, b)`: gradient rules written this way run under every interpreter."""

    def __getattr__(self, name):
        get_op(name)

        def bound(*args, **attrs):
            return _STACK[-1].process(OPS[name], args, attrs)

        bound.__name__ = name
        setattr(self, name, bound)  # later lookups skip __getattr__
        return bound


op = _OpNamespace()


# ---- type promotion, shared by every interpreter ------------------------------------------------------------------
def promote(opdef, args, interpreter):
    """`args` with the promoting operands cast to PyTorch's result type (`float_compute` ops lift integers to the
    default float) and Python numbers made 0-d operands of it; the op's `check` sees the dtypes before promotion."""
    operand = interpreter.operand
    if opdef.check is not None:
        opdef.check(*(_operand_dtype(opdef, i, args[i], operand) for i in opdef.promote))
    first = args[opdef.promote[0]]
    if isinstance(first, operand):  # the common case, operands already of one dtype, costs one loop
        d = first.dtype
        for i in opdef.promote:
            a = args[i]
            if not isinstance(a, operand) or a.dtype is not d:
                break
        else:
            if d.is_floating_point or not opdef.float_compute:
                return args
    picked = [args[i] for i in opdef.promote]
    for i, a in zip(opdef.promote, picked):
        _operand_dtype(opdef, i, a, operand)
    common = dt.result_type(*picked)
    if opdef.float_compute and not common.is_floating_point:
        common = dt.get_default_dtype()
    like = next((a for a in args if isinstance(a, operand)), None)
    out = list(args)
    for i in opdef.promote:
        a = args[i]
        if not isinstance(a, operand):
            out[i] = interpreter.scalar(a, common, like)
        elif a.dtype is not common:
            out[i] = interpreter.process(OPS["cast"], (a,), {"dtype": common})
    return out


def _operand_dtype(opdef, i, a, operand):
    """The dtype of promoting operand `i` (an operand or a Python number); anything else is a TypeError."""
    if isinstance(a, operand):
        return a.dtype
    if not isinstance(a, (int, float, bool, np.number, np.bool_)):
        raise TypeError(f"{opdef.name}(): argument {i} must be a {operand.__name__} or a number, not "
                        f"{type(a).__name__}")
    return dt.scalar_dtype(a)
