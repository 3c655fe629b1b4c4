"""Matrix products (matmul, mm, bmm, dot, mv, outer, addmm, baddbmm) and the `@` operator, over one matmul primitive.

1-D operands are lifted to matrices and the added dim squeezed away afterwards, as PyTorch's matmul does.
"""
# ruff: noqa: A002  (PyTorch's signatures name the first operand `input`)
from ..core.bind import bind
from ..ir.ops.linalg import check_dtypes, check_inner
from ..ir.ops.util import fmt_shape
from .api import export
from .tensor import Tensor


def _require_tensors(opname, **named):
    for pos, (name, t) in enumerate(named.items(), 1):
        if not isinstance(t, Tensor):
            raise TypeError(f"{opname}(): argument '{name}' (position {pos}) must be Tensor, not {type(t).__name__}")


def _require_dims(opname, ndim, **named):
    for name, t in named.items():
        if t.ndim != ndim:
            raise RuntimeError(f"{opname}: {name} must be a {ndim}-D tensor, got shape {fmt_shape(tuple(t.shape))}")


def _reshape(t, shape):
    return bind("reshape", t, shape=tuple(shape))


def _matmul(opname, a, b):
    """PyTorch matmul on tensors of any rank >= 1; `opname` names the public function in errors."""
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"{opname}: both arguments to matmul need to be at least 1D, but they are {a.ndim}D and "
                           f"{b.ndim}D")
    check_dtypes(opname, a._type(), b._type())
    check_inner(opname, tuple(a.shape), tuple(b.shape))
    a2 = _reshape(a, (1,) + tuple(a.shape)) if a.ndim == 1 else a
    b2 = _reshape(b, tuple(b.shape) + (1,)) if b.ndim == 1 else b
    out = bind("matmul", a2, b2)
    if a.ndim == 1 or b.ndim == 1:
        shape = tuple(out.shape)
        shape = shape[:-2] + ((shape[-2],) if a.ndim > 1 else ()) + ((shape[-1],) if b.ndim > 1 else ())
        out = _reshape(out, shape)
    return out


@export("matmul", out=True)
def matmul(input, other):
    """Matrix product with NumPy/PyTorch broadcasting of batch dims; 1-D operands act as row/column vectors."""
    _require_tensors("matmul", input=input, other=other)
    return _matmul("matmul", input, other)


@export("mm", out=True)
def mm(input, mat2):
    """2-D x 2-D matrix product (no broadcasting)."""
    _require_tensors("mm", input=input, mat2=mat2)
    _require_dims("mm", 2, input=input, mat2=mat2)
    return _matmul("mm", input, mat2)


def _check_batches(opname, a, b):
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"{opname}: batch1 and batch2 must have the same number of batches, got shapes "
                           f"{fmt_shape(tuple(a.shape))} and {fmt_shape(tuple(b.shape))}")


@export("bmm", out=True)
def bmm(input, mat2):
    """Batched 3-D x 3-D product with equal batch sizes (no broadcasting)."""
    _require_tensors("bmm", input=input, mat2=mat2)
    _require_dims("bmm", 3, input=input, mat2=mat2)
    _check_batches("bmm", input, mat2)
    return _matmul("bmm", input, mat2)


@export("dot", out=True)
def dot(input, other):
    """Inner product of two 1-D tensors (a 0-d result)."""
    _require_tensors("dot", input=input, other=other)
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"dot: 1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(f"dot: inconsistent tensor size, expected tensor [{input.shape[0]}] and src "
                           f"[{other.shape[0]}] to have the same number of elements, but got {input.shape[0]} and "
                           f"{other.shape[0]} elements respectively")
    return _matmul("dot", input, other)


@export("mv", out=True)
def mv(input, vec):
    """Matrix (n, m) times vector (m,) -> (n,)."""
    _require_tensors("mv", input=input, vec=vec)
    _require_dims("mv", 2, input=input)
    _require_dims("mv", 1, vec=vec)
    return _matmul("mv", input, vec)


@export("outer", "ger", out=True)
def outer(input, vec2):
    """Outer product of two 1-D tensors, as a broadcast multiply (dtypes promote like mul)."""
    _require_tensors("outer", input=input, vec2=vec2)
    _require_dims("outer", 1, input=input, vec2=vec2)
    return bind("mul", _reshape(input, (input.shape[0], 1)), _reshape(vec2, (1, vec2.shape[0])))


def _scaled_sum(opname, input, product, beta, alpha):
    """beta * input + alpha * product; input must broadcast to the product's shape; beta == 0 ignores input."""
    shape = tuple(product.shape)
    lead = len(shape) - input.ndim
    if lead < 0 or any(s not in (1, p) for s, p in zip(input.shape, shape[lead:])):
        raise RuntimeError(f"{opname}: input of shape {fmt_shape(tuple(input.shape))} cannot be broadcast to the "
                           f"product's shape {fmt_shape(shape)}")
    scaled = product if alpha == 1 else bind("mul", product, alpha)
    if beta == 0:
        return scaled
    return bind("add", input if beta == 1 else bind("mul", input, beta), scaled)


def _addmm_like(opname, product_fn, ndim):
    def fn(input, mat1, mat2, *, beta=1, alpha=1):
        _require_tensors(opname, input=input, mat1=mat1, mat2=mat2)
        _require_dims(opname, ndim, mat1=mat1, mat2=mat2)
        return _scaled_sum(opname, input, product_fn(mat1, mat2), beta, alpha)

    fn.__name__ = opname
    fn.__doc__ = f"beta * input + alpha * {product_fn.__name__}(mat1, mat2)."
    export(opname, inplace=True, out=True)(fn)
    return fn


addmm = _addmm_like("addmm", mm, 2)
baddbmm = _addmm_like("baddbmm", bmm, 3)


def _rmatmul(self, other):
    return matmul(other, self)


Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = _rmatmul
