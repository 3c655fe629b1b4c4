"""Reductions with PyTorch's signatures: sum, mean, prod, amax/amin, max/min (values, indices), argmax/argmin,
var/std, norm, all/any, logsumexp, the numerically stable softmax / log_softmax composites, and the cumsum /
cumprod scans."""
import builtins
import math
from collections import namedtuple
from types import SimpleNamespace

from ..core import dtype as dt
from ..core.bind import bind
from ..ir.ops import OpError
from ..ir.ops.reduce import check_dim_given, check_nonempty
from ..ir.ops.util import norm_dim, norm_dims
from .api import export
from .tensor import Tensor


def _return_type(name):
    """A (values, indices) named tuple that prints like torch.return_types.<name>."""
    def __repr__(self):  # noqa: N807
        return f"graphnet.return_types.{name}(\nvalues={self.values!r},\nindices={self.indices!r})"

    return type(name, (namedtuple(name, ["values", "indices"]),), {"__slots__": (), "__repr__": __repr__})


return_types = SimpleNamespace(**{name: _return_type(name) for name in ("max", "min", "sort", "topk")})


def _dims(dim):
    """PyTorch's dim argument (None, an int, or a sequence; () means all dims) as the ops' `dims` attr."""
    if dim is None:
        return None
    if isinstance(dim, int):
        return (dim,)
    return tuple(dim) or None


def _cast(input, dtype):
    return input if dtype is None else input.to(dtype)


def _count(x, dims):
    n = 1
    for d in norm_dims("reduce", dims, x.ndim):
        n *= x.shape[d]
    return n


@export("sum", out=True)
def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    return bind("sum", _cast(input, dtype), dims=_dims(dim), keepdim=keepdim)


@export("mean", out=True)
def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Integer inputs are refused as PyTorch does (pass dtype= to pick a float type)."""
    return bind("mean", _cast(input, dtype), dims=_dims(dim), keepdim=keepdim)


@export("prod", out=True)
def prod(input, dim=None, keepdim=False, *, dtype=None):
    return bind("prod", _cast(input, dtype), dims=None if dim is None else (dim,), keepdim=keepdim)


@export("amax", out=True)
def amax(input, dim=(), keepdim=False):
    return bind("amax", input, dims=_dims(dim), keepdim=keepdim)


@export("amin", out=True)
def amin(input, dim=(), keepdim=False):
    return bind("amin", input, dims=_dims(dim), keepdim=keepdim)


@export("argmax", out=True)
def argmax(input, dim=None, keepdim=False):
    return bind("argmax", input, dim=dim, keepdim=keepdim)


@export("argmin", out=True)
def argmin(input, dim=None, keepdim=False):
    return bind("argmin", input, dim=dim, keepdim=keepdim)


def _values_indices(name, input, dim, keepdim):
    """max/min along `dim`: the gradient flows to the selected index only (a gather), as in PyTorch."""
    x = input.reshape(1) if input.ndim == 0 else input
    d = norm_dim(name, dim, x.ndim)
    check_nonempty(name, x, d)  # named max/min, as PyTorch's error is, not the argmax that computes it
    indices = bind("arg" + name, x, dim=d, keepdim=True)
    values = bind("gather", x, indices, dim=d)
    if input.ndim == 0 or not keepdim:
        shape = tuple(s for i, s in enumerate(x.shape) if i != d) if input.ndim else ()
        values, indices = (bind("reshape", t, shape=shape) for t in (values, indices))
    return getattr(return_types, name)(values, indices)


def _extreme(name, elementwise):
    def fn(input, dim=None, keepdim=False, *, other=None):
        """max(input) -> the largest value; max(input, dim, keepdim) -> (values, indices); max(input, other)."""
        if isinstance(dim, Tensor) or other is not None:
            return bind(elementwise, input, other if other is not None else dim)
        if dim is None:
            check_dim_given(name, input, OpError)  # named max/min, not amax/amin
            return bind("a" + name, input, dims=None, keepdim=False)
        return _values_indices(name, input, dim, keepdim)

    fn.__name__ = name
    export(name)(fn)
    return fn


max = _extreme("max", "maximum")  # noqa: A001
min = _extreme("min", "minimum")  # noqa: A001


def _correction(name, input, unbiased, correction):
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{name}(): std and var only support floating point and complex dtypes (got "
                           f"{input.dtype.name})")
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def _var(name, input, dim, unbiased, keepdim, correction):
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    dims = _dims(dim)
    c = _correction(name, input, unbiased, correction)
    mu = bind("mean", input, dims=dims, keepdim=True)
    diff = bind("sub", input, mu)
    total = bind("sum", bind("mul", diff, diff), dims=dims, keepdim=keepdim)
    var_ = bind("div", total, float(builtins.max(_count(input, dims) - c, 0)))
    return var_, (mu if keepdim else bind("reshape", mu, shape=tuple(var_.shape)))


@export("var", out=True)
def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance with Bessel's correction by default (correction=1, or unbiased=False for 0)."""
    return _var("var", input, dim, unbiased, keepdim, correction)[0]


@export("std", out=True)
def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return bind("sqrt", _var("std", input, dim, unbiased, keepdim, correction)[0])


@export("var_mean", method=False)
def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _var("var_mean", input, dim, unbiased, keepdim, correction)


@export("std_mean", method=False)
def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    v, m = _var("std_mean", input, dim, unbiased, keepdim, correction)
    return bind("sqrt", v), m


@export("norm", out=True)
def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm over `dim` (all elements by default): p = 2/'fro', 1, inf, -inf, 0 or any other number."""
    x = _cast(input, dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"norm(): Expected a floating point tensor as input. Got {x.dtype.name}")
    dims = _dims(dim)
    if p == "fro" or p == 2:
        return bind("sqrt", bind("sum", bind("mul", x, x), dims=dims, keepdim=keepdim))
    if isinstance(p, str):
        raise RuntimeError(f"norm(): p={p!r} is not supported; use p='fro', or a number")
    a = bind("abs", x)
    if p == math.inf or p == -math.inf:
        return bind("amax" if p > 0 else "amin", a, dims=dims, keepdim=keepdim)
    if p == 0:
        return bind("cast", bind("sum", bind("ne", x, 0), dims=dims, keepdim=keepdim), dtype=x.dtype)
    if p == 1:
        return bind("sum", a, dims=dims, keepdim=keepdim)
    return bind("pow", bind("sum", bind("pow", a, float(p)), dims=dims, keepdim=keepdim), 1.0 / p)


def _boolean(name, test, count_true):
    def fn(input, dim=None, keepdim=False):
        x = input if input.dtype is dt.bool_ else bind("ne", input, 0)
        counted = bind("sum", x if count_true else bind("logical_not", x), dims=_dims(dim), keepdim=keepdim)
        return bind(test, counted, 0)

    fn.__name__ = name
    fn.__doc__ = f"Whether {name} elements (along dim) are non-zero; counts, so empty inputs give all=True, any=False."
    export(name, out=True)(fn)
    return fn


all = _boolean("all", "eq", count_true=False)  # noqa: A001
any = _boolean("any", "ne", count_true=True)  # noqa: A001


def _float(x):
    return x if x.dtype.is_floating_point else bind("cast", x, dtype=dt.get_default_dtype())


def _stable_max(x, dims, shift_inf):
    """The per-slice max, detached, taken as 0 where it is -inf (all -inf slices give log(0), not inf - inf) and,
    with `shift_inf`, +inf (logsumexp gives inf there, while softmax gives NaN, as in PyTorch); 0 when a
    reduced dim is empty (an empty slice has no max, and PyTorch's logsumexp of it is log(0) = -inf)."""
    if _count(x, dims) == 0:
        return 0.0
    m = bind("amax", x.detach(), dims=dims, keepdim=True)
    shifted = bind("eq", bind("abs", m), math.inf) if shift_inf else bind("eq", m, -math.inf)
    return bind("where", shifted, 0.0, m)


@export("logsumexp", out=True)
def logsumexp(input, dim, keepdim=False):
    x = _float(input)
    dims = _dims(dim)
    m = _stable_max(x, dims, shift_inf=True)
    out = bind("add", bind("log", bind("sum", bind("exp", bind("sub", x, m)), dims=dims, keepdim=True)), m)
    return out if keepdim else bind("reshape", out, shape=tuple(s for i, s in enumerate(x.shape)
                                                                if i not in norm_dims("logsumexp", dims, x.ndim)))


def _softmax_dim(name, x, dim):
    """PyTorch's legacy implicit dim when none is given: 0 for 0-, 1- and 3-d inputs, else 1."""
    if dim is None:
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return (norm_dim(name, dim, x.ndim),) if x.ndim else ()


def _no_integer_kernel(name, x, dims):
    """PyTorch has no integer or bool softmax kernels: it raises NotImplementedError naming the kernel it would
    use, except for an empty input, which it returns as it is without reaching one."""
    if x.dtype.is_floating_point or x.numel() == 0:
        return
    kernel = f"{name}_lastdim_kernel_impl" if not dims or dims[0] == x.ndim - 1 else f"{name}_kernel_impl"
    raise NotImplementedError(f'"{kernel}" not implemented for \'{x.dtype.legacy_name[:-6]}\'')


@export("softmax")
def softmax(input, dim=None, dtype=None, *, _stacklevel=3):
    """exp(x - max) / sum(exp(x - max)): the shift keeps exp from overflowing."""
    x = _cast(input, dtype)
    dims = _softmax_dim("softmax", x, dim)
    _no_integer_kernel("softmax", x, dims)
    if not x.dtype.is_floating_point:
        return bind("copy", x)
    low = x.dtype.element_size < 4  # float16/bfloat16: one float32 computation rounded once, as PyTorch's kernel
    if low:
        x = bind("cast", x, dtype=dt.float32)
    e = bind("exp", bind("sub", x, _stable_max(x, dims, shift_inf=False)))
    out = bind("div", e, bind("sum", e, dims=dims, keepdim=True))
    return bind("cast", out, dtype=input.dtype if dtype is None else dt.as_dtype(dtype)) if low else out


@export("log_softmax")
def log_softmax(input, dim=None, dtype=None, *, _stacklevel=3):
    """x - logsumexp(x): stable for large logits, where log(softmax(x)) would give -inf."""
    x = _cast(input, dtype)
    dims = _softmax_dim("log_softmax", x, dim)
    _no_integer_kernel("log_softmax", x, dims)
    if not x.dtype.is_floating_point:
        return bind("copy", x)
    if not dims:  # a 0-d input: one element, seen as a 1-element slice
        return bind("reshape", bind("log_softmax", bind("reshape", x, shape=(1,)), dim=0), shape=())
    return bind("log_softmax", x, dim=dims[0])


@export("cumsum", inplace=True, out=True)
def cumsum(input, dim, *, dtype=None):
    """Running sums along `dim`; integer and bool inputs give int64 (unless `dtype` says otherwise)."""
    return bind("cumsum", _cast(input, dtype), dim=dim)


@export("cumprod", inplace=True, out=True)
def cumprod(input, dim, *, dtype=None):
    """Running products along `dim`; the gradient is exact where the input has zeros."""
    return bind("cumprod", _cast(input, dtype), dim=dim)
