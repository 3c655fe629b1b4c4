"""Activations, softmax, dropout, BatchNorm, LayerNorm, GroupNorm: NumPy references, gradchecks, train vs eval."""
import math

import numpy as np
import pytest
from scipy.special import erf
from scipy.special import erfc as _erfc

import graphnet as torch
import graphnet.nn.functional as F
from graphnet import nn
from graphnet.autograd import gradcheck


def _np(t):
    return t.detach().numpy()


def _x64(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def _softplus(x):
    return np.logaddexp(0, x)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ELU(), lambda x: np.where(x > 0, x, np.expm1(x))),
    (nn.ELU(alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (nn.GELU(), lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2)))),
    (nn.GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    (nn.Sigmoid(), _sigmoid),
    (nn.Tanh(), np.tanh),
    (nn.SiLU(), lambda x: x * _sigmoid(x)),
    (nn.Softplus(), _softplus),
    (nn.LogSigmoid(), lambda x: -_softplus(-x)),
    (nn.Hardtanh(), lambda x: np.clip(x, -1, 1)),
    (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
    (nn.Mish(), lambda x: x * np.tanh(_softplus(x))),
    (nn.Hardswish(), lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
]


@pytest.mark.parametrize("layer, ref", ACTIVATIONS, ids=lambda v: repr(v) if isinstance(v, nn.Module) else "")
def test_activation_values_and_gradcheck(layer, ref):
    x = torch.tensor(np.concatenate([np.linspace(-6, 6, 25), [-30.0, 30.0]]), dtype=torch.float64)
    np.testing.assert_allclose(_np(layer(x)), ref(x.numpy()), rtol=1e-6, atol=2e-7)
    probe = torch.tensor([-2.3, -0.7, 0.4, 1.9, 3.1], dtype=torch.float64, requires_grad=True)
    assert gradcheck(layer, (probe,))


def test_activation_reprs_and_inplace():
    assert [repr(m) for m in (nn.ReLU(), nn.ReLU(inplace=True), nn.LeakyReLU(), nn.ELU(), nn.GELU(),
                              nn.GELU(approximate="tanh"), nn.Sigmoid(), nn.Softmax(dim=1), nn.LogSoftmax(1))] == [
        "ReLU()", "ReLU(inplace=True)", "LeakyReLU(negative_slope=0.01)", "ELU(alpha=1.0)",
        "GELU(approximate='none')", "GELU(approximate='tanh')", "Sigmoid()", "Softmax(dim=1)", "LogSoftmax(dim=1)"]
    x = torch.tensor([-1.0, 2.0])
    assert F.relu(x, inplace=True) is x and x.tolist() == [0.0, 2.0]
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(x, approximate="fast")


def test_elu_large_inputs_have_finite_gradients():
    x = torch.tensor([-20.0, 100.0], requires_grad=True)
    F.elu(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [math.exp(-20.0), 1.0], rtol=1e-6)


def test_erf_composite_accuracy():
    x = torch.tensor(np.linspace(-8, 8, 401), dtype=torch.float64)
    np.testing.assert_allclose(_np(F.erf(x)), erf(x.numpy()), rtol=0, atol=2e-7)
    np.testing.assert_allclose(_np(F.erfc(x)), _erfc(x.numpy()), rtol=2e-7)


def test_softmax_and_log_softmax():
    x = torch.randn(3, 5, dtype=torch.float64)
    e = np.exp(x.numpy() - x.numpy().max(1, keepdims=True))
    ref = e / e.sum(1, keepdims=True)
    np.testing.assert_allclose(_np(nn.Softmax(dim=1)(x)), ref, rtol=1e-12)
    np.testing.assert_allclose(_np(F.log_softmax(x, dim=1)), np.log(ref), rtol=1e-12)
    np.testing.assert_allclose(_np(F.softmax(x, 0)).sum(0), np.ones(5))
    big = torch.tensor([[1000.0, 0.0]])
    np.testing.assert_allclose(_np(F.log_softmax(big, 1)), [[0.0, -1000.0]])
    assert gradcheck(lambda t: F.log_softmax(t, -1), (_x64(2, 4),))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        F.softmax(x)


# ---- dropout --------------------------------------------------------------------------------------------------
def test_dropout_train_scales_and_eval_is_identity():
    drop = nn.Dropout(0.25)
    x = torch.ones(200, 200)
    y = _np(drop(x))
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    assert abs(kept.mean() - 0.75) < 0.01
    drop.eval()
    assert drop(x) is x
    torch.manual_seed(7)
    a = _np(F.dropout(x, 0.5))
    torch.manual_seed(7)
    np.testing.assert_array_equal(a, _np(F.dropout(x, 0.5)))
    assert np.all(_np(F.dropout(x, 1.0)) == 0)
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)


def test_dropout_gradient_uses_the_same_mask():
    x = torch.ones(50, requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), _np(y))


# ---- batch norm -----------------------------------------------------------------------------------------------
def _bn_ref(x, axes, eps=1e-5):
    m = x.mean(axis=axes, keepdims=True)
    v = x.var(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps)


def test_batchnorm2d_train_updates_running_stats_and_eval_uses_them():
    bn = nn.BatchNorm2d(3).double()
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64) * 2 + 1
    out = bn(x)
    np.testing.assert_allclose(_np(out), _bn_ref(x.numpy(), (0, 2, 3)), rtol=1e-10, atol=1e-12)
    mean, var = x.numpy().mean(axis=(0, 2, 3)), x.numpy().var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(_np(bn.running_mean), 0.1 * mean, rtol=1e-10)
    np.testing.assert_allclose(_np(bn.running_var), 0.9 + 0.1 * var, rtol=1e-10)
    assert bn.num_batches_tracked.item() == 1 and not bn.running_mean.requires_grad
    bn.eval()
    ref = (x.numpy() - _np(bn.running_mean).reshape(1, 3, 1, 1)) / np.sqrt(_np(bn.running_var).reshape(1, 3, 1, 1)
                                                                           + 1e-5)
    np.testing.assert_allclose(_np(bn(x)), ref, rtol=1e-10)
    assert bn.num_batches_tracked.item() == 1


def test_batchnorm_cumulative_momentum_none_and_no_tracking():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [torch.randn(8, 2) for _ in range(3)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(_np(bn.running_mean), np.mean([x.numpy().mean(0) for x in xs], axis=0), rtol=1e-5,
                               atol=1e-6)
    free = nn.BatchNorm1d(2, track_running_stats=False)
    assert free.running_mean is None and list(free.state_dict()) == ["weight", "bias"]
    free.eval()
    x = torch.randn(6, 2)
    np.testing.assert_allclose(_np(free(x)), _bn_ref(x.numpy(), (0,)), rtol=1e-4, atol=1e-5)


def test_batchnorm_affine_gradcheck_and_repr():
    bn = nn.BatchNorm1d(3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64))
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (_x64(4, 3, 2), bn.weight,
                                                                                         bn.bias))
    assert repr(bn) == "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"^expected 4D input \(got 2D input\)$"):
        nn.BatchNorm2d(3)(torch.randn(2, 3))


# ---- layer / group norm ---------------------------------------------------------------------------------------
def test_layernorm_values_gradcheck_repr():
    ln = nn.LayerNorm([3, 4]).double()
    with torch.no_grad():
        ln.weight.copy_(torch.randn(3, 4, dtype=torch.float64))
        ln.bias.copy_(torch.randn(3, 4, dtype=torch.float64))
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    ref = _bn_ref(x.numpy(), (1, 2)) * _np(ln.weight) + _np(ln.bias)
    np.testing.assert_allclose(_np(ln(x)), ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda t, w, b: F.layer_norm(t, (3, 4), w, b), (_x64(2, 3, 4), ln.weight, ln.bias))
    assert repr(nn.LayerNorm(10)) == "LayerNorm((10,), eps=1e-05, elementwise_affine=True, bias=True)"
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[10\], expected input with shape \[\*, 10\], but "
                                           r"got input of size\[3, 5\]"):
        nn.LayerNorm(10)(torch.randn(3, 5))


def test_groupnorm_values():
    gn = nn.GroupNorm(2, 4)
    x = torch.randn(3, 4, 2, 2, dtype=torch.float64)
    grouped = x.numpy().reshape(3, 2, -1)
    ref = ((grouped - grouped.mean(-1, keepdims=True)) / np.sqrt(grouped.var(-1, keepdims=True) + 1e-5)).reshape(
        3, 4, 2, 2)
    np.testing.assert_allclose(_np(gn.double()(x)), ref, rtol=1e-10, atol=1e-12)
