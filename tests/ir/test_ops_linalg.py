"""matmul primitive and the linalg API (matmul, mm, bmm, dot, mv, outer, addmm, baddbmm, @): values vs NumPy,
gradients vs finite differences, and every error path."""
import numpy as np
import pytest

import graphnet as torch
from graphnet.autograd import gradcheck
from graphnet.core.bind import bind
from graphnet.ir.ops import OpError

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((2, 3, 4), (4, 5)),          # batched @ matrix: the folded-GEMM weight gradient
    ((3, 4), (2, 4, 5)),          # matrix @ batched
    ((2, 1, 3, 4), (5, 4, 2)),    # batch dims broadcast both ways
    ((4,), (4,)),                 # dot
    ((4,), (2, 4, 5)),            # vector @ batched
    ((2, 3, 4), (4,)),            # batched @ vector
    ((1, 4), (4, 1)),
]


def _t(shape, dtype=np.float64, grad=False, rng=None):
    rng = rng or np.random.default_rng(sum(shape) + len(shape))
    return torch.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=grad)


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_values_match_numpy(sa, sb):
    a, b = _t(sa), _t(sb, rng=np.random.default_rng(7))
    want = np.matmul(a.numpy(), b.numpy())
    for got in (torch.matmul(a, b), a @ b, a.matmul(b), b.__rmatmul__(a)):
        assert tuple(got.shape) == want.shape
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_matmul_float32_keeps_dtype_and_int_matmul_works():
    a, b = _t((3, 4), np.float32), _t((4, 2), np.float32)
    out = a @ b
    assert out.dtype is torch.float32
    np.testing.assert_allclose(out.numpy(), a.numpy() @ b.numpy(), rtol=1e-5)
    ia, ib = torch.tensor([[1, 2], [3, 4]]), torch.tensor([[5], [6]])
    assert (ia @ ib).dtype is torch.int64 and (ia @ ib).tolist() == [[17], [39]]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_gradcheck(sa, sb):
    a, b = _t(sa, grad=True), _t(sb, grad=True, rng=np.random.default_rng(3))
    assert gradcheck(lambda x, y: x @ y, (a, b))


def test_matmul_grad_only_where_needed():
    a, b = _t((2, 3, 4), grad=True), _t((4, 5))
    (a @ b).sum().backward()
    assert b.grad is None
    np.testing.assert_allclose(a.grad.numpy(), np.broadcast_to(b.numpy().sum(1), (2, 3, 4)), rtol=1e-12)


def test_mm_bmm_dot_mv_outer_values():
    m, n, v, w = _t((3, 4)), _t((4, 2)), _t((4,)), _t((3,))
    b1, b2 = _t((2, 3, 4)), _t((2, 4, 5))
    np.testing.assert_allclose(torch.mm(m, n).numpy(), m.numpy() @ n.numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.mm(n).numpy(), m.numpy() @ n.numpy(), rtol=1e-12)
    np.testing.assert_allclose(torch.bmm(b1, b2).numpy(), np.matmul(b1.numpy(), b2.numpy()), rtol=1e-12)
    assert torch.dot(v, v).shape == () and np.isclose(torch.dot(v, v).item(), v.numpy() @ v.numpy())
    np.testing.assert_allclose(torch.mv(m, v).numpy(), m.numpy() @ v.numpy(), rtol=1e-12)
    np.testing.assert_allclose(torch.outer(w, v).numpy(), np.outer(w.numpy(), v.numpy()), rtol=1e-12)
    np.testing.assert_allclose(w.ger(v).numpy(), np.outer(w.numpy(), v.numpy()), rtol=1e-12)


def test_addmm_and_baddbmm_scale_and_broadcast():
    c, m, n = _t((2,)), _t((3, 4)), _t((4, 2))
    got = torch.addmm(c, m, n, beta=0.5, alpha=2.0)
    np.testing.assert_allclose(got.numpy(), 0.5 * c.numpy() + 2.0 * (m.numpy() @ n.numpy()), rtol=1e-12)
    nan_input = torch.full((3, 2), float("nan"), dtype=torch.float64)
    np.testing.assert_allclose(torch.addmm(nan_input, m, n, beta=0).numpy(), m.numpy() @ n.numpy(), rtol=1e-12)
    bc, b1, b2 = _t((2, 3, 5)), _t((2, 3, 4)), _t((2, 4, 5))
    np.testing.assert_allclose(torch.baddbmm(bc, b1, b2, alpha=3).numpy(),
                               bc.numpy() + 3 * np.matmul(b1.numpy(), b2.numpy()), rtol=1e-12)
    inplace = _t((3, 2))
    want = inplace.numpy() + m.numpy() @ n.numpy()
    inplace.addmm_(m, n)
    np.testing.assert_allclose(inplace.numpy(), want, rtol=1e-12)


def test_addmm_gradcheck():
    c, m, n = _t((3, 1), grad=True), _t((3, 4), grad=True), _t((4, 2), grad=True)
    assert gradcheck(lambda x, y, z: torch.addmm(x, y, z, beta=0.5, alpha=-1.5), (c, m, n))


def test_matmul_out_argument():
    a, b = _t((3, 4)), _t((4, 2))
    out = torch.zeros(3, 2, dtype=torch.float64)
    assert torch.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out.numpy(), a.numpy() @ b.numpy(), rtol=1e-12)


ERRORS = [
    (lambda: _t((64, 400)) @ _t((256, 120)), OpError,
     r"^matmul: cannot multiply \(64x400\) and \(256x120\) — the inner dimensions 400 and 256 must match"),
    (lambda: _t((3,)) @ _t((4,)), OpError, r"matmul: cannot multiply \(3\) and \(4\)"),
    (lambda: _t((2, 3)) @ _t((4,)), OpError, r"matmul: cannot multiply \(2x3\) and \(4\)"),
    (lambda: torch.matmul(torch.tensor(2.0), _t((2, 2))), RuntimeError, r"at least 1D, but they are 0D and 2D"),
    (lambda: _t((2, 3)) @ _t((3, 2), np.float32), OpError, r"matmul: .*same dtype, but got float64 and float32"),
    (lambda: torch.ones(2, 2, dtype=torch.bool) @ torch.ones(2, 2, dtype=torch.bool), NotImplementedError,
     r"matmul: not implemented for bool"),
    (lambda: _t((2, 3, 4)) @ _t((3, 4, 5)), OpError,
     r"matmul: batch dimensions \(2,\) and \(3,\) cannot be broadcast together"),
    (lambda: torch.matmul(_t((2, 2)), 3), TypeError, r"matmul\(\): argument 'other' \(position 2\) must be Tensor, "
                                                     r"not int"),
    (lambda: bind("matmul", _t((3,)), _t((3, 2))), OpError, r"matmul: the primitive needs operands with >= 2 dims"),
    (lambda: torch.mm(_t((3,)), _t((3, 2))), RuntimeError, r"mm: input must be a 2-D tensor, got shape \(3,\)"),
    (lambda: torch.mm(_t((2, 3)), _t((2, 3))), OpError, r"mm: cannot multiply \(2x3\) and \(2x3\)"),
    (lambda: torch.bmm(_t((2, 3)), _t((3, 2))), RuntimeError, r"bmm: input must be a 3-D tensor"),
    (lambda: torch.bmm(_t((2, 3, 4)), _t((3, 4, 5))), RuntimeError, r"bmm: .*same number of batches"),
    (lambda: torch.dot(_t((2, 2)), _t((2, 2))), RuntimeError, r"dot: 1D tensors expected, but got 2D and 2D"),
    (lambda: torch.dot(_t((3,)), _t((4,))), RuntimeError, r"dot: inconsistent tensor size, expected tensor \[3\]"),
    (lambda: torch.mv(_t((2, 3)), _t((3, 1))), RuntimeError, r"mv: vec must be a 1-D tensor"),
    (lambda: torch.outer(_t((2, 3)), _t((3,))), RuntimeError, r"outer: input must be a 1-D tensor"),
    (lambda: torch.addmm(_t((4, 2)), _t((3, 4)), _t((4, 2))), RuntimeError,
     r"addmm: input of shape \(4, 2\) cannot be broadcast to the product's shape \(3, 2\)"),
]


@pytest.mark.parametrize("fn,exc,match", ERRORS)
def test_errors(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()
