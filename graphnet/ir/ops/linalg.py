"""Linear-algebra primitive: batched matmul (NumPy semantics for >= 2-D operands; 1-D cases live in the API)."""
import numpy as np

from ...core import dtype as dt
from ...core.bind import op
from ...core.opdef import OpDef, OpError, register
from .util import broadcast_shapes, fmt_shape, unbroadcast


def _x_shape(shape):
    return "(" + "x".join(map(str, shape)) + ")"


def check_inner(opname, a_shape, b_shape):
    """Raise the shared 'cannot multiply' error when the contracted dims of a @ b differ (1-D operands allowed)."""
    k_a, k_b = a_shape[-1], b_shape[-2] if len(b_shape) > 1 else b_shape[0]
    if k_a != k_b:
        raise OpError(f"{opname}: cannot multiply {_x_shape(a_shape)} and {_x_shape(b_shape)} — the inner "
                      f"dimensions {k_a} and {k_b} must match")


def check_dtypes(opname, a, b):
    """Both operands must share one non-bool dtype (PyTorch does not promote inside matmul)."""
    if a.dtype is not b.dtype:
        raise OpError(f"{opname}: expected both operands to have the same dtype, but got {a.dtype.name} and "
                      f"{b.dtype.name} (shapes {fmt_shape(a.shape)} and {fmt_shape(b.shape)}); cast one with .to()")
    if a.dtype is dt.bool_:  # NotImplementedError, as PyTorch's missing bool kernels raise
        raise NotImplementedError(f"{opname}: not implemented for bool tensors (shapes {fmt_shape(a.shape)} and "
                      f"{fmt_shape(b.shape)})")


def _matmul_infer(a, b):
    if a.ndim < 2 or b.ndim < 2:
        raise OpError(f"matmul: the primitive needs operands with >= 2 dims, got shapes {fmt_shape(a.shape)} and "
                      f"{fmt_shape(b.shape)} (graphnet.matmul handles 1-D operands)")
    check_dtypes("matmul", a, b)
    check_inner("matmul", a.shape, b.shape)
    try:
        batch = broadcast_shapes("matmul", a.shape[:-2], b.shape[:-2])
    except OpError:
        raise OpError(f"matmul: batch dimensions {fmt_shape(a.shape[:-2])} and {fmt_shape(b.shape[:-2])} cannot be "
                      f"broadcast together (shapes {fmt_shape(a.shape)} and {fmt_shape(b.shape)})") from None
    return a.with_(shape=batch + (a.shape[-2], b.shape[-1]))


def _mT(x):  # noqa: N802
    """Swap the last two dims (a view)."""
    n = x.ndim
    return op.permute(x, dims=tuple(range(n - 2)) + (n - 1, n - 2))


def _matmul_grad(c, g):
    """dA = g @ B^T, dB = A^T @ g, summed over broadcast batch dims; a 2-D B folds A's batch into one GEMM."""
    a, b = c.inputs
    a_shape, b_shape = c.in_types[0].shape, c.in_types[1].shape
    ga = unbroadcast(op.matmul(g, _mT(b)), a_shape) if c.needs_input_grad[0] else None
    gb = None
    if c.needs_input_grad[1]:
        if len(b_shape) == 2 and len(a_shape) > 2:
            rows = int(np.prod(a_shape[:-1]))
            flat_a = op.reshape(a, shape=(rows, a_shape[-1]))
            flat_g = op.reshape(g, shape=(rows, b_shape[-1]))
            gb = op.matmul(_mT(flat_a), flat_g)
        else:
            gb = unbroadcast(op.matmul(_mT(a), g), b_shape)
    return ga, gb


register(OpDef("matmul", "matmul", _matmul_infer, np.matmul, _matmul_grad, save_inputs=(0, 1), kernel="gemm"))
