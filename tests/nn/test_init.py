"""nn.init: gains, fans, distributions' statistics, reproducibility under manual_seed, default layer init."""
import math

import numpy as np
import pytest

import graphnet as torch
from graphnet import nn


@pytest.mark.parametrize("name, param, expected", [
    ("linear", None, 1.0), ("conv2d", None, 1.0), ("sigmoid", None, 1.0), ("tanh", None, 5.0 / 3),
    ("relu", None, math.sqrt(2.0)), ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01 ** 2))),
    ("leaky_relu", math.sqrt(5), math.sqrt(2.0 / 6)), ("selu", None, 0.75),
])
def test_calculate_gain(name, param, expected):
    assert nn.init.calculate_gain(name, param) == pytest.approx(expected)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity foo"):
        nn.init.calculate_gain("foo")
    with pytest.raises(ValueError, match="negative_slope abc not a valid number"):
        nn.init.calculate_gain("leaky_relu", "abc")


def test_fan_in_fan_out():
    assert nn.init._calculate_fan_in_and_fan_out(torch.empty(6, 3, 5, 5)) == (75, 150)
    assert nn.init._calculate_fan_in_and_fan_out(torch.empty(120, 400)) == (400, 120)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init._calculate_fan_in_and_fan_out(torch.empty(3))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        nn.init.kaiming_uniform_(torch.empty(3, 3), mode="fan_avg")


# std of N(0, 1) truncated to [-1, 1]: sqrt(1 - 2 phi(1) / (Phi(1) - Phi(-1)))
_TRUNC_STD = math.sqrt(1 - 2 * math.exp(-0.5) / math.sqrt(2 * math.pi) / math.erf(1 / math.sqrt(2)))


def _stats(t):
    a = t.detach().numpy().astype(np.float64)
    return a.mean(), a.std(), a.min(), a.max()


@pytest.mark.parametrize("fn, kwargs, mean, std, bound", [
    (nn.init.uniform_, {"a": -2.0, "b": 4.0}, 1.0, 6 / math.sqrt(12), (-2.0, 4.0)),
    (nn.init.normal_, {"mean": 3.0, "std": 0.5}, 3.0, 0.5, None),
    (nn.init.xavier_uniform_, {}, 0.0, math.sqrt(2.0 / 600), (-math.sqrt(6.0 / 600), math.sqrt(6.0 / 600))),
    (nn.init.xavier_normal_, {"gain": 2.0}, 0.0, 2 * math.sqrt(2.0 / 600), None),
    (nn.init.kaiming_uniform_, {"nonlinearity": "relu"}, 0.0, math.sqrt(2.0 / 400), (-math.sqrt(6 / 400),
                                                                                      math.sqrt(6 / 400))),
    (nn.init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "relu"}, 0.0, math.sqrt(2.0 / 200), None),
    (nn.init.trunc_normal_, {"std": 1.0, "a": -1.0, "b": 1.0}, 0.0, _TRUNC_STD, (-1.0, 1.0)),
])
def test_distribution_statistics(fn, kwargs, mean, std, bound):
    t = torch.empty(200, 400)
    assert fn(t, **kwargs) is t
    m, s, lo, hi = _stats(t)
    assert m == pytest.approx(mean, abs=0.02 * std)
    assert s == pytest.approx(std, rel=0.02)
    if bound:
        assert bound[0] <= lo and hi <= bound[1]


def test_constant_zeros_ones_eye_dirac():
    t = torch.empty(3, 4)
    np.testing.assert_array_equal(nn.init.constant_(t, 2.5).numpy(), np.full((3, 4), 2.5))
    np.testing.assert_array_equal(nn.init.zeros_(t).numpy(), np.zeros((3, 4)))
    np.testing.assert_array_equal(nn.init.ones_(t).numpy(), np.ones((3, 4)))
    np.testing.assert_array_equal(nn.init.eye_(t).numpy(), np.eye(3, 4))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        nn.init.eye_(torch.empty(2, 2, 2))
    w = nn.init.dirac_(torch.empty(2, 2, 3, 3)).numpy()
    assert w.sum() == 2 and w[0, 0, 1, 1] == 1 and w[1, 1, 1, 1] == 1


def test_orthogonal_rows_are_orthonormal():
    q = nn.init.orthogonal_(torch.empty(4, 6)).numpy().astype(np.float64)
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)


def test_init_on_parameter_records_no_graph_and_is_seeded():
    p = nn.Parameter(torch.empty(5, 5))
    torch.manual_seed(3)
    nn.init.normal_(p)
    first = p.detach().numpy().copy()
    assert p.grad_fn is None and p.is_leaf and p.requires_grad
    torch.manual_seed(3)
    nn.init.normal_(p)
    np.testing.assert_array_equal(p.detach().numpy(), first)


def test_default_layer_init_bounds_and_reproducibility():
    torch.manual_seed(0)
    a = nn.Linear(400, 120)
    torch.manual_seed(0)
    b = nn.Linear(400, 120)
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) gives the same bound as the bias
    w = a.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(a.bias.detach().numpy()).max() <= bound
    conv = nn.Conv2d(6, 16, 5)
    cb = 1 / math.sqrt(6 * 25)
    assert np.abs(conv.weight.detach().numpy()).max() <= cb and np.abs(conv.bias.detach().numpy()).max() <= cb
    assert a.weight.dtype == torch.float32 and nn.Linear(2, 2, dtype=torch.float64).weight.dtype == torch.float64


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 3), (4, 12)])
def test_orthogonal_with_gain_is_scaled_semi_orthogonal_for_tall_wide_and_conv_shapes(shape):
    flat = nn.init.orthogonal_(torch.empty(*shape), gain=2.0).numpy().astype(np.float64).reshape(shape[0], -1)
    small = flat.T @ flat if flat.shape[0] > flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(small, 4.0 * np.eye(min(flat.shape)), atol=1e-5)
    assert tuple(nn.init.orthogonal_(torch.empty(0, 3)).shape) == (0, 3)


def test_trunc_normal_shifted_bounds_and_kaiming_conv_fan_out():
    t = nn.init.trunc_normal_(torch.empty(300, 300), mean=1.0, std=2.0, a=0.0, b=3.0).numpy()
    assert t.min() >= 0.0 and t.max() <= 3.0 and t.min() < 0.01 and t.max() > 2.99
    w = nn.init.kaiming_normal_(torch.empty(64, 32, 3, 3), mode="fan_out", nonlinearity="relu").numpy()
    assert w.std() == pytest.approx(math.sqrt(2.0 / (64 * 9)), rel=0.03)


def test_gains_and_fans_equal_pytorchs():
    real = pytest.importorskip("torch")
    for name, param in [("relu", None), ("tanh", None), ("leaky_relu", 0.2), ("selu", None), ("conv2d", None)]:
        assert nn.init.calculate_gain(name, param) == real.nn.init.calculate_gain(name, param)
    for shape in [(5, 7), (8, 3, 3, 3), (4, 2, 5)]:
        assert (nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
                == real.nn.init._calculate_fan_in_and_fan_out(real.empty(*shape)))


def test_dirac_groups_and_its_error():
    w = nn.init.dirac_(torch.empty(4, 2, 3, 3), groups=2).numpy()
    assert w.sum() == 4 and w[2, 0, 1, 1] == 1 and w[3, 1, 1, 1] == 1
    with pytest.raises(ValueError, match="dim 0 must be divisible by groups"):
        nn.init.dirac_(torch.empty(3, 2, 3, 3), groups=2)


def test_model_apply_runs_an_init_function_on_every_submodule():
    def init_fn(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(m.bias, 0.5)

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(36, 5))
    assert model.apply(init_fn) is model
    assert np.all(model[0].bias.detach().numpy() == 0.5) and np.all(model[3].bias.detach().numpy() == 0)
    bound = math.sqrt(6.0 / (36 + 5))
    assert np.abs(model[3].weight.detach().numpy()).max() <= bound
