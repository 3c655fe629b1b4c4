"""Losses (functional and modules): NumPy references for every reduction, float64 gradchecks, and error messages."""
import numpy as np
import pytest

import graphnet as torch
import graphnet.nn.functional as F
from graphnet import nn
from graphnet.autograd import gradcheck

REDUCE = {"none": lambda a: a, "mean": np.mean, "sum": np.sum}


def _np(t):
    return t.detach().numpy()


def _x64(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def _log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _huber(d, delta):
    a = np.abs(d)
    return np.where(a < delta, 0.5 * a * a, delta * (a - 0.5 * delta))


ELEMENTWISE = [
    ("mse", nn.MSELoss, {}, lambda x, y: (x - y) ** 2),
    ("l1", nn.L1Loss, {}, lambda x, y: np.abs(x - y)),
    ("smooth_l1", nn.SmoothL1Loss, {}, lambda x, y: _huber(x - y, 1.0)),
    ("smooth_l1_beta", nn.SmoothL1Loss, {"beta": 0.5}, lambda x, y: _huber(x - y, 0.5) / 0.5),
    ("huber", nn.HuberLoss, {"delta": 0.7}, lambda x, y: _huber(x - y, 0.7)),
]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name, cls, kwargs, ref", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_regression_losses(name, cls, kwargs, ref, reduction):
    x, y = torch.randn(4, 3, dtype=torch.float64) * 2, torch.randn(4, 3, dtype=torch.float64)
    loss = cls(reduction=reduction, **kwargs)
    np.testing.assert_allclose(_np(loss(x, y)), REDUCE[reduction](ref(x.numpy(), y.numpy())), rtol=1e-12)
    target = y.detach()
    assert gradcheck(lambda a: cls(reduction=reduction, **kwargs)(a, target), (_x64(4, 3),))


def test_reduction_errors_and_repr():
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        F.mse_loss(torch.ones(2), torch.ones(2), reduction="avg")
    with pytest.warns(UserWarning, match="Using a target size"):
        F.mse_loss(torch.ones(2, 1), torch.ones(2))
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()" and repr(nn.MSELoss()) == "MSELoss()"
    assert nn.MSELoss(size_average=False).reduction == "sum"


# ---- binary ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_and_clamped_log(reduction):
    p = torch.tensor([[0.1, 0.9, 0.5], [0.0, 1.0, 0.3]], dtype=torch.float64)
    t = torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 0.2]], dtype=torch.float64)
    w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    with np.errstate(divide="ignore"):
        logp, log1mp = np.maximum(np.log(p.numpy()), -100), np.maximum(np.log(1 - p.numpy()), -100)
    ref = -(t.numpy() * logp + (1 - t.numpy()) * log1mp) * w.numpy()
    np.testing.assert_allclose(_np(nn.BCELoss(weight=w, reduction=reduction)(p, t)), REDUCE[reduction](ref))
    assert np.isfinite(_np(F.binary_cross_entropy(p, t))).all()


def test_bce_gradcheck_and_errors():
    target = torch.tensor([0.0, 1.0, 0.3], dtype=torch.float64)
    probe = torch.tensor([0.2, 0.6, 0.7], dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda p: F.binary_cross_entropy(p, target), (probe,))
    with pytest.raises(ValueError, match="Using a target size .* that is different to the input size"):
        F.binary_cross_entropy(torch.rand(3), torch.rand(3, 1))
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([1.5]), torch.tensor([1.0]))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_with_logits_matches_sigmoid_bce_and_is_stable(reduction):
    x = torch.tensor([[-3.0, 0.0, 2.0], [500.0, -500.0, 0.5]], dtype=torch.float64)
    t = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 1.0]], dtype=torch.float64)
    pw = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
    sp = np.logaddexp(0, -x.numpy())  # -log(sigmoid(x))
    ref = pw.numpy() * t.numpy() * sp + (1 - t.numpy()) * (x.numpy() + sp)
    out = nn.BCEWithLogitsLoss(pos_weight=pw, reduction=reduction)(x, t)
    np.testing.assert_allclose(_np(out), REDUCE[reduction](ref), rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda a: F.binary_cross_entropy_with_logits(a, t, pos_weight=pw), (_x64(2, 3),))


def test_bce_with_logits_gradient_at_zero_is_sigmoid_minus_target():
    x = torch.zeros(3, requires_grad=True)
    t = torch.tensor([0.0, 1.0, 0.25])
    F.binary_cross_entropy_with_logits(x, t, reduction="sum").backward()
    np.testing.assert_allclose(x.grad.numpy(), 0.5 - t.numpy(), rtol=1e-6)


# ---- multi-class ----------------------------------------------------------------------------------------------
def _nll_ref(logp, target, weight, ignore_index, reduction):
    """logp (N, C, *), target (N, *); PyTorch's definition: weighted picks, mean divides by picked weights."""
    c = logp.shape[1]
    w = np.ones(c) if weight is None else weight
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    picked = np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    wt = w[safe] * valid
    loss = -picked * wt
    return loss.sum() / wt.sum() if reduction == "mean" else REDUCE[reduction](loss)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("use_weight, ignore", [(False, -100), (True, -100), (True, 2), (False, 1)])
def test_cross_entropy_class_indices(reduction, use_weight, ignore):
    x = torch.randn(6, 4, dtype=torch.float64)
    target = torch.tensor([0, 2, 1, 3, 2, 1])
    weight = torch.tensor([0.2, 1.0, 2.0, 0.5], dtype=torch.float64) if use_weight else None
    out = F.cross_entropy(x, target, weight=weight, ignore_index=ignore, reduction=reduction)
    ref = _nll_ref(_log_softmax(x.numpy(), 1), target.numpy(), None if weight is None else weight.numpy(), ignore,
                   reduction)
    np.testing.assert_allclose(_np(out), ref, rtol=1e-12)
    nll = F.nll_loss(F.log_softmax(x, 1), target, weight=weight, ignore_index=ignore, reduction=reduction)
    np.testing.assert_allclose(_np(nll), ref, rtol=1e-12)


def test_cross_entropy_spatial_and_unbatched():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    target = torch.randint(0, 3, (2, 4, 5))
    ref = _nll_ref(_log_softmax(x.numpy(), 1), target.numpy(), None, -100, "mean")
    np.testing.assert_allclose(_np(nn.CrossEntropyLoss()(x, target)), ref, rtol=1e-12)
    v = torch.randn(5, dtype=torch.float64)
    np.testing.assert_allclose(_np(F.cross_entropy(v, torch.tensor(3))), -_log_softmax(v.numpy(), 0)[3], rtol=1e-12)


@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_label_smoothing(use_weight, reduction):
    x = torch.randn(5, 4, dtype=torch.float64)
    target = torch.tensor([0, 3, -100, 1, 2])
    w = np.array([0.5, 1.0, 2.0, 1.5]) if use_weight else np.ones(4)
    eps = 0.2
    logp = _log_softmax(x.numpy(), 1)
    valid = target.numpy() != -100
    nll = _nll_ref(logp, target.numpy(), w, -100, reduction)
    smooth = -(logp * w).sum(1) * valid
    wt = w[np.where(valid, target.numpy(), 0)] * valid
    smooth = smooth.sum() / wt.sum() if reduction == "mean" else REDUCE[reduction](smooth)
    ref = (1 - eps) * nll + eps / 4 * smooth
    weight = torch.tensor(w) if use_weight else None
    out = nn.CrossEntropyLoss(weight=weight, label_smoothing=eps, reduction=reduction)(x, target)
    np.testing.assert_allclose(_np(out), ref, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_probability_targets(reduction):
    x = torch.randn(3, 4, dtype=torch.float64)
    probs = torch.softmax(torch.randn(3, 4, dtype=torch.float64), 1)
    w = torch.tensor([1.0, 0.5, 2.0, 1.0], dtype=torch.float64)
    logp = _log_softmax(x.numpy(), 1)
    smoothed = probs.numpy() * 0.9 + 0.1 / 4
    ref = -(logp * w.numpy() * smoothed).sum(1)
    out = F.cross_entropy(x, probs, weight=w, label_smoothing=0.1, reduction=reduction)
    np.testing.assert_allclose(_np(out), REDUCE[reduction](ref), rtol=1e-12)


def test_cross_entropy_is_stable_and_gradchecks():
    x = torch.tensor([[1000.0, 0.0, -1000.0]], dtype=torch.float64)
    np.testing.assert_allclose(_np(F.cross_entropy(x, torch.tensor([1]))), 1000.0)
    target = torch.tensor([2, 0, 1])
    assert gradcheck(lambda a: F.cross_entropy(a, target, label_smoothing=0.1), (_x64(3, 4),))
    assert gradcheck(lambda a: F.nll_loss(a, target, ignore_index=0, reduction="sum"), (_x64(3, 4),))
    w = torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64)
    assert gradcheck(lambda a: F.cross_entropy(a, target, weight=w), (_x64(3, 4),))


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    x = torch.randn(4, 5, requires_grad=True)
    target = torch.tensor([1, 0, 4, 4])
    F.cross_entropy(x, target).backward()
    e = np.exp(_log_softmax(x.detach().numpy().astype(np.float64), 1))
    e[np.arange(4), target.numpy()] -= 1
    np.testing.assert_allclose(x.grad.numpy(), e / 4, rtol=1e-5, atol=1e-7)


def test_cross_entropy_errors():
    with pytest.raises(IndexError, match="Target 10 is out of bounds"):
        F.cross_entropy(torch.randn(2, 10), torch.tensor([3, 10]))
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        F.cross_entropy(torch.randn(2, 10), torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(64\) to match target batch_size \(32\)"):
        F.cross_entropy(torch.randn(64, 10), torch.zeros(32, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="size mismatch"):
        F.cross_entropy(torch.randn(2, 3, 4), torch.zeros(2, 5, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="probability targets must have the input's shape"):
        F.cross_entropy(torch.randn(2, 3), torch.rand(2))
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), label_smoothing=1.5)


def test_one_hot():
    t = torch.tensor([[0, 2], [1, 2]])
    out = F.one_hot(t)
    assert out.dtype == torch.int64 and tuple(out.shape) == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy(), np.eye(3, dtype=np.int64)[t.numpy()])
    assert tuple(F.one_hot(t, num_classes=5).shape) == (2, 2, 5)
    with pytest.raises(RuntimeError, match="one_hot is only applicable to index tensor"):
        F.one_hot(torch.ones(2))
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes"):
        F.one_hot(t, num_classes=2)
    with pytest.raises(RuntimeError, match="Class values must be non-negative"):
        F.one_hot(torch.tensor([-1]))


def test_kl_div():
    logq = torch.log_softmax(torch.randn(3, 4, dtype=torch.float64), 1)
    p = torch.softmax(torch.randn(3, 4, dtype=torch.float64), 1)
    ref = (p.numpy() * (np.log(p.numpy()) - logq.numpy()))
    np.testing.assert_allclose(_np(F.kl_div(logq, p, reduction="batchmean")), ref.sum() / 3, rtol=1e-12)
    np.testing.assert_allclose(_np(nn.KLDivLoss(reduction="sum", log_target=True)(logq, p.log())), ref.sum(),
                               rtol=1e-12)


def test_pad_constant():
    x = torch.randn(2, 3, dtype=torch.float64)
    out = F.pad(x, (1, 2, 0, 1), value=5.0)
    np.testing.assert_array_equal(_np(out), np.pad(x.numpy(), ((0, 1), (1, 2)), constant_values=5.0))
    assert gradcheck(lambda a: F.pad(a, (1, 1)), (_x64(2, 2),))
