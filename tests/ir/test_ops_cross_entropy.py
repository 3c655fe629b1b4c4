"""cross_entropy_rows and its backward primitive: values vs a float64 SciPy reference (ignored rows, huge and
infinite logits), gradients and double gradients vs finite differences, shape/dtype errors, and F.cross_entropy
running on them for class-index targets."""
import numpy as np
import pytest
from scipy.special import logsumexp, softmax

import graphnet as torch
import graphnet.nn.functional as F
from graphnet.autograd import gradcheck
from graphnet.core.bind import bind
from graphnet.ir.ops import OPS

RNG = np.random.default_rng(3)
IGNORE = -100


def _ref_loss(x, t, ignore_index=IGNORE):
    """logsumexp(x[i]) - x[i, t[i]] in float64, 0 where t[i] == ignore_index."""
    x = x.astype(np.float64)
    kept = t != ignore_index
    with np.errstate(invalid="ignore"):
        loss = logsumexp(x, axis=1) - x[np.arange(len(t)), np.where(kept, t, 0)]
    return np.where(kept, loss, 0.0)


def _ref_grad(g, x, t, ignore_index=IGNORE):
    kept = t != ignore_index
    d = softmax(x.astype(np.float64), axis=1)
    d[np.arange(len(t)), np.where(kept, t, 0)] -= 1
    return np.where(kept[:, None], d * g[:, None], 0.0)


def _case(n=7, c=5):
    """Odd N and C, one ignored row, huge logits of both signs and a -inf logit off the target."""
    x = RNG.standard_normal((n, c)) * 3
    t = RNG.integers(0, c, n)
    t[2] = IGNORE
    x[0, :2] = 1e4, -1e4
    x[1, (t[1] + 1) % c] = -np.inf
    return x, t


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
def test_rows_and_their_gradient_match_the_reference(dtype, tol):
    x, t = _case()
    g = RNG.standard_normal(len(t))
    xt, tt = torch.tensor(x.astype(dtype)), torch.tensor(t)
    loss = bind("cross_entropy_rows", xt, tt, ignore_index=IGNORE)
    assert loss.dtype.np == dtype
    np.testing.assert_allclose(loss.numpy(), _ref_loss(x.astype(dtype), t), rtol=tol, atol=tol)
    dx = bind("cross_entropy_rows_backward", torch.tensor(g.astype(dtype)), xt, tt, ignore_index=IGNORE)
    np.testing.assert_allclose(dx.numpy(), _ref_grad(g, x.astype(dtype), t), rtol=tol, atol=tol)
    assert not dx.numpy()[2].any()


def test_infinite_logits_give_pytorch_values():
    x = np.array([[-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 1.0], [np.inf, 0.0, 0.0], [np.nan, 0.0, 0.0]])
    t = np.array([0, 1, 1, IGNORE])
    loss = bind("cross_entropy_rows", torch.tensor(x), torch.tensor(t), ignore_index=IGNORE).numpy()
    # a row holding +inf is NaN, as PyTorch 2.13 gives (its log_softmax computes inf - inf there)
    assert np.isnan(loss[0]) and loss[1] == np.inf and np.isnan(loss[2]) and loss[3] == 0.0


def test_an_in_range_ignore_index_drops_its_rows():
    x, t = RNG.standard_normal((5, 3)), np.array([0, 1, 2, 1, 0])
    loss = bind("cross_entropy_rows", torch.tensor(x), torch.tensor(t), ignore_index=1).numpy()
    np.testing.assert_allclose(loss, _ref_loss(x, t, 1), rtol=1e-12)
    assert loss[1] == loss[3] == 0.0


def test_eager_op_refuses_a_target_out_of_range():
    with pytest.raises(IndexError, match=r"Target 3 is out of bounds\. \(cross_entropy: input has 3 classes.*\[0, 2\]"):
        bind("cross_entropy_rows", torch.randn(2, 3), torch.tensor([0, 3]), ignore_index=IGNORE)
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        bind("cross_entropy_rows_backward", torch.ones(2), torch.randn(2, 3), torch.tensor([-1, 0]),
             ignore_index=IGNORE)


@pytest.mark.parametrize("name, types, message", [
    ("cross_entropy_rows", [((4, 3), torch.int64), ((4,), torch.int64)], "expected floating-point logits, got int64"),
    ("cross_entropy_rows", [((4, 3, 2), torch.float32), ((4,), torch.int64)], r"shape \(N, C\).*got \(4, 3, 2\)"),
    ("cross_entropy_rows", [((4, 0), torch.float32), ((4,), torch.int64)], r"C >= 1, got \(4, 0\)"),
    ("cross_entropy_rows", [((4, 3), torch.float32), ((4,), torch.int32)], r"int64 class indices of shape \(4,\)"),
    ("cross_entropy_rows", [((4, 3), torch.float32), ((5,), torch.int64)], r"got int64 of shape \(5,\)"),
    ("cross_entropy_rows_backward", [((4,), torch.float64), ((4, 3), torch.float32), ((4,), torch.int64)],
     r"grad_output must be float32 of shape \(4,\), got float64"),
])
def test_shape_and_dtype_errors_name_the_op(name, types, message):
    tensors = [torch.zeros(shape, dtype=dtype) for shape, dtype in types]
    with pytest.raises(RuntimeError, match=f"{name}: .*{message}"):
        OPS[name].infer(*(a._type() for a in tensors), ignore_index=IGNORE)


def test_gradients_of_both_primitives_match_finite_differences():
    x, t = _case(5, 4)
    x[0, :2] = 3.0, -2.0  # finite differences need moderate logits
    x[1] = RNG.standard_normal(4)
    xt, tt = torch.tensor(x, requires_grad=True), torch.tensor(t)
    g = torch.tensor(RNG.standard_normal(5), requires_grad=True)
    assert gradcheck(lambda a: bind("cross_entropy_rows", a, tt, ignore_index=IGNORE), (xt,))
    assert gradcheck(lambda gg, a: bind("cross_entropy_rows_backward", gg, a, tt, ignore_index=IGNORE), (g, xt))


def test_double_backward_through_create_graph_matches_finite_differences():
    x = torch.tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    t = torch.tensor([2, IGNORE, 0, 1])
    w = torch.tensor(RNG.standard_normal((4, 3)))

    def grad_dot(a):
        with torch.enable_grad():  # gradcheck's finite differences run under no_grad
            (ga,) = torch.autograd.grad(F.cross_entropy(a, t, reduction="sum"), a, create_graph=True)
        return (ga * w).sum() + (ga * ga).sum()

    assert gradcheck(grad_dot, (x,))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_functional_cross_entropy_uses_the_rows_for_every_reduction(reduction):
    x, t = _case(6, 5)
    x[0, :2] = 3.0, -2.0
    x[1] = RNG.standard_normal(5)
    xt = torch.tensor(x, requires_grad=True)
    out = F.cross_entropy(xt, torch.tensor(t), reduction=reduction)
    rows = _ref_loss(x, t)
    want = {"none": rows, "sum": rows.sum(), "mean": rows.sum() / (t != IGNORE).sum()}[reduction]
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-12)
    assert "CrossEntropyRowsBackward0" in _grad_fn_names(out)
    assert gradcheck(lambda a: F.cross_entropy(a, torch.tensor(t), reduction=reduction), (xt,))


def _grad_fn_names(out):
    names, todo = set(), [out.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is not None and fn.name() not in names:
            names.add(fn.name())
            todo.extend(f for f, _ in fn.next_functions)
    return names


def test_functional_one_row_input_all_ignored_mean_and_other_paths():
    x = torch.tensor(RNG.standard_normal(5), requires_grad=True)
    one = F.cross_entropy(x, torch.tensor(3), reduction="none")
    assert one.shape == () and "CrossEntropyRowsBackward0" in _grad_fn_names(one)
    np.testing.assert_allclose(one.item(), _ref_loss(x.detach().numpy()[None], np.array([3]))[0], rtol=1e-12)
    assert gradcheck(lambda a: F.cross_entropy(a, torch.tensor(3)), (x,))
    assert np.isnan(F.cross_entropy(torch.randn(2, 3), torch.tensor([IGNORE, IGNORE])).item())
    logits, target = torch.randn(4, 3, requires_grad=True), torch.tensor([0, 2, 1, 1], dtype=torch.uint8)
    np.testing.assert_allclose(F.cross_entropy(logits, target).item(),
                               _ref_loss(logits.detach().numpy(), target.numpy().astype(np.int64)).mean(), rtol=1e-6)
    weighted = F.cross_entropy(logits, target, weight=torch.ones(3))
    assert "CrossEntropyRowsBackward0" not in _grad_fn_names(weighted)


def test_functional_still_checks_targets_eagerly():
    with pytest.raises(IndexError, match=r"Target 5 is out of bounds. \(cross_entropy: input has 3 classes"):
        F.cross_entropy(torch.randn(2, 3), torch.tensor([0, 5]))
    with pytest.raises(RuntimeError, match="cross_entropy: size mismatch"):
        F.cross_entropy(torch.randn(2, 3), torch.tensor([[0], [1]]))
