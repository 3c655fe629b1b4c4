"""Elementwise functions, methods, in-place forms and Python operators (all thin calls into the dispatcher)."""
from ..core import dtype as dt
from ..core.bind import bind
from .api import export
from .tensor import Tensor


def _unary(name, *aliases):
    def fn(input):
        return bind(name, input)

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}."
    export(name, *aliases, inplace=True, out=True)(fn)
    return fn


neg = _unary("neg", "negative")
abs = _unary("abs", "absolute")  # noqa: A001
exp = _unary("exp")
log = _unary("log")
log1p = _unary("log1p")
log2 = _unary("log2")
log10 = _unary("log10")
expm1 = _unary("expm1")
sqrt = _unary("sqrt")
rsqrt = _unary("rsqrt")
sin = _unary("sin")
cos = _unary("cos")
tanh = _unary("tanh")
erf = _unary("erf")
erfc = _unary("erfc")
sigmoid = _unary("sigmoid")
relu = _unary("relu")
sign = _unary("sign")
floor = _unary("floor")
trunc = _unary("trunc", "fix")


@export("logical_not", inplace=True, out=True)
def logical_not(input):
    return bind("logical_not", input if input.dtype.name == "bool" else bind("ne", input, 0))


@export("add", inplace=True, out=True)
def add(input, other, *, alpha=1):
    """input + alpha * other (alpha may be a 0-d tensor: a compiled optimizer's runtime learning rate)."""
    return bind("add", input, _scaled(other, alpha))


@export("sub", "subtract", inplace=True, out=True)
def sub(input, other, *, alpha=1):
    return bind("sub", input, _scaled(other, alpha))


@export("rsub", method=False)
def rsub(input, other, *, alpha=1):
    """other - alpha * input (torch.rsub); bool operands are refused as sub refuses them."""
    return bind("sub", other, _scaled(input, alpha))


def _scaled(other, alpha):
    return other if not isinstance(alpha, Tensor) and alpha == 1 else mul(other, alpha)


@export("mul", "multiply", inplace=True, out=True)
def mul(input, other):
    return bind("mul", input, other)


@export("div", "divide", "true_divide", inplace=True, out=True)
def div(input, other, *, rounding_mode=None):
    """True division; rounding_mode 'trunc' or 'floor' rounds the quotient (integers stay integers)."""
    if rounding_mode is None:
        return bind("div", input, other)
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                         f"'{rounding_mode}'")
    from ..core import dtype as dt
    q = bind("div", input, other)
    q = bind("floor" if rounding_mode == "floor" else "trunc", q)
    common = dt.result_type(input, other)
    return q if common.is_floating_point else bind("cast", q, dtype=common)


@export("remainder", inplace=True, out=True)
def remainder(input, other):
    """Python's modulo (`%`): the result takes the divisor's sign, input - floor(input / other) * other."""
    return sub(input, mul(div(input, other, rounding_mode="floor"), other))


@export("fmod", inplace=True, out=True)
def fmod(input, other):
    """C's fmod: the result takes the dividend's sign, input - trunc(input / other) * other."""
    return sub(input, mul(div(input, other, rounding_mode="trunc"), other))


@export("pow", inplace=True, out=True)
def pow(input, exponent):  # noqa: A001
    """A negative Python-integer exponent of an integer tensor is refused, as in PyTorch (a tensor exponent is
    computed: 0 wherever |base| > 1)."""
    if (isinstance(exponent, int) and not isinstance(exponent, bool) and exponent < 0 and isinstance(input, Tensor)
            and not input.dtype.is_floating_point):
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return bind("pow", input, exponent)


@export("square", inplace=True, out=True)
def square(input):
    return bind("mul", input, input)


@export("reciprocal", inplace=True, out=True)
def reciprocal(input):
    return bind("div", 1.0, input)


@export("clamp", "clip", inplace=True, out=True)
def clamp(input, min=None, max=None):  # noqa: A002
    """Limit values to [min, max]; either bound may be None, a number, or a tensor."""
    if min is None and max is None:
        raise RuntimeError("clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):  # PyTorch's gradient rule, not maximum's and minimum's
        return bind("clamp_tensor", input, input if min is None else min, input if max is None else max,
                    has_min=min is not None, has_max=max is not None)
    from ..core import dtype as dt
    common = dt.result_type(input, *(b for b in (min, max) if b is not None))  # clamp(int, 0.5) is float, as in PyTorch
    x = input if common is input.dtype else bind("cast", input, dtype=common)
    kind = float if common.is_floating_point else int
    return bind("clamp", x, min=None if min is None else kind(min), max=None if max is None else kind(max))


@export("clamp_min", inplace=True)
def clamp_min(input, min):  # noqa: A002
    return clamp(input, min=min)


@export("clamp_max", inplace=True)
def clamp_max(input, max):  # noqa: A002
    return clamp(input, max=max)


@export("maximum", out=True)
def maximum(input, other):
    return bind("maximum", input, other)


@export("minimum", out=True)
def minimum(input, other):
    return bind("minimum", input, other)


@export("where")
def where(condition, input, other):
    return bind("where", condition, input, other)


# the C++ type names PyTorch's messages print
_CPP_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
              "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
              "uint8": "unsigned char"}


@export("masked_fill", inplace=True)
def masked_fill(input, mask, value):
    """input where mask is false, `value` (a Number or 0-d tensor, cast to input's dtype) where it is true."""
    if mask.dtype is not dt.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{_CPP_NAMES[mask.dtype.name]}")
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
        value = value if value.dtype is input.dtype else bind("cast", value, dtype=input.dtype)
    else:
        value = Tensor._scalar(value, input.dtype, input.device)
    return bind("where", mask, value, input)


def _compare(name, *aliases):
    def fn(input, other):
        return bind(name, input, other)

    fn.__name__ = name
    export(name, *aliases, inplace=True, out=True)(fn)
    return fn


eq = _compare("eq")
ne = _compare("ne", "not_equal")
lt = _compare("lt", "less")
le = _compare("le", "less_equal")
gt = _compare("gt", "greater")
ge = _compare("ge", "greater_equal")


@export("logical_and", inplace=True, out=True)
def logical_and(input, other):
    return bind("logical_and", input, other)


@export("logical_or", inplace=True, out=True)
def logical_or(input, other):
    return bind("logical_or", input, other)


@export("zero_", function=False)
def zero_(self):
    return fill_(self, 0)


@export("fill_", function=False)
def fill_(self, value):
    """Set every element to `value` (a number or a 0-d tensor)."""
    value = value.item() if isinstance(value, Tensor) else value
    full = bind("cast", Tensor._scalar(value, self.dtype, self.device), dtype=self.dtype)
    return self._assign_inplace(bind("expand", full, shape=tuple(self.shape)), "fill_")


@export("copy_", function=False)
def copy_(self, src, non_blocking=False):
    """Copy `src` (broadcast to this shape, cast to this dtype, moved to this device) into this tensor."""
    src = src if isinstance(src, Tensor) else Tensor._scalar(src, self.dtype)
    if src.device != self.device:
        src = src.to(self.device)
    if src.dtype is not self.dtype:
        src = bind("cast", src, dtype=self.dtype)
    if tuple(src.shape) != tuple(self.shape):
        src = bind("expand", src, shape=tuple(self.shape))
    return self._assign_inplace(bind("add", src, 0) if src.requires_grad else src, "copy_")


@export("clone")
def clone(input):
    return bind("copy", input)


def _binary_operator(fn, reflected=False):
    return (lambda self, other: fn(other, self)) if reflected else fn


def _bitwise(name):
    def op_(self, other):
        if self.dtype.name != "bool":
            raise TypeError(f"{name}: only bool tensors are supported by graphnet's bitwise operators, got "
                            f"{self.dtype.name}")
        return (logical_and if name == "and" else logical_or)(self, other)

    return op_


def _invert(self):
    if self.dtype.name != "bool":
        raise TypeError(f"~ (bitwise_not): only bool tensors are supported, got {self.dtype.name}")
    return logical_not(self)


Tensor.__add__ = _binary_operator(add)
Tensor.__radd__ = _binary_operator(add, True)
Tensor.__sub__ = _binary_operator(sub)
Tensor.__rsub__ = _binary_operator(sub, True)
Tensor.__mul__ = _binary_operator(mul)
Tensor.__rmul__ = _binary_operator(mul, True)
Tensor.__truediv__ = _binary_operator(div)
Tensor.__rtruediv__ = _binary_operator(div, True)
Tensor.__pow__ = _binary_operator(pow)
Tensor.__rpow__ = _binary_operator(pow, True)
Tensor.__floordiv__ = lambda self, other: div(self, other, rounding_mode="floor")
Tensor.__rfloordiv__ = lambda self, other: div(other, self, rounding_mode="floor")
Tensor.__mod__ = _binary_operator(remainder)
Tensor.__rmod__ = _binary_operator(remainder, True)
Tensor.__neg__ = neg
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = abs
Tensor.__invert__ = _invert
Tensor.__and__ = _bitwise("and")
Tensor.__or__ = _bitwise("or")
Tensor.__eq__ = eq
Tensor.__ne__ = ne
Tensor.__lt__ = lt
Tensor.__le__ = le
Tensor.__gt__ = gt
Tensor.__ge__ = ge
Tensor.__iadd__ = Tensor.add_
Tensor.__isub__ = Tensor.sub_
Tensor.__imul__ = Tensor.mul_
Tensor.__itruediv__ = Tensor.div_
Tensor.__imod__ = Tensor.remainder_
