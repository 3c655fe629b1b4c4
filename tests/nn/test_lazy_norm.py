"""LazyBatchNorm1d/2d and UninitializedBuffer: shapes inferred at the first call, values vs PyTorch, dtype moves
before materialisation, state_dict, compile after materialisation, and the error paths."""
import numpy as np
import pytest

import graphnet
from graphnet import nn

torch = pytest.importorskip("torch")


def _pair(gn_cls, t_cls, x, **kw):
    g, t = gn_cls(**kw), t_cls(**kw)
    return g, t, g(graphnet.tensor(x)), t(torch.tensor(x))


@pytest.mark.parametrize("shape, cls, become", [((4, 3, 5, 5), "LazyBatchNorm2d", nn.BatchNorm2d),
                                                 ((6, 5), "LazyBatchNorm1d", nn.BatchNorm1d),
                                                 ((6, 5, 7), "LazyBatchNorm1d", nn.BatchNorm1d)])
def test_lazy_batchnorm_matches_torch_and_becomes_batchnorm(shape, cls, become):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    g = getattr(nn, cls)()
    assert isinstance(g.weight, nn.UninitializedParameter) and isinstance(g.running_mean, nn.UninitializedBuffer)
    assert nn.parameter.is_lazy(g.running_var) and repr(g.running_mean) == "<UninitializedBuffer>"
    t = getattr(torch.nn, cls)()
    out, ref = g(graphnet.tensor(x)), t(torch.tensor(x))
    assert type(g) is become and g.num_features == shape[1] and not g._forward_pre_hooks
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert list(g.state_dict()) == list(t.state_dict())
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(g.state_dict()[k].numpy(), v.numpy(), rtol=1e-6, atol=1e-7)
    out.sum().backward()
    assert g.weight.grad is not None and tuple(g.weight.grad.shape) == (shape[1],)


def test_lazy_batchnorm_without_affine_or_running_stats():
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    g, t, out, ref = _pair(nn.LazyBatchNorm1d, torch.nn.LazyBatchNorm1d, x, affine=False, track_running_stats=False)
    assert g.weight is None and g.running_mean is None and list(g.state_dict()) == list(t.state_dict()) == []
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


def test_dtype_conversion_before_the_first_call_reaches_the_materialised_tensors():
    """torch: LazyLinear(3).double() materialises float64 (the empty lazy tensor takes the dtype)."""
    bn, lin = nn.LazyBatchNorm2d().double(), nn.LazyLinear(3).double()
    bn(graphnet.randn(2, 4, 3, 3, dtype=graphnet.float64))
    lin(graphnet.randn(2, 5, dtype=graphnet.float64))
    assert bn.weight.dtype == bn.running_mean.dtype == lin.weight.dtype == graphnet.float64
    assert bn.num_batches_tracked.dtype == graphnet.int64
    assert torch.nn.LazyBatchNorm2d().double().weight.dtype == torch.float64


def test_compiled_after_materialisation_matches_eager():
    m = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.ReLU())
    x = graphnet.randn(2, 3, 6, 6)
    m(x)
    ref = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    ref.load_state_dict(m.state_dict())
    out = graphnet.compile(m)(x)
    np.testing.assert_allclose(out.detach().numpy(), ref(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m[1].running_var.numpy(), ref[1].running_var.numpy(), rtol=1e-6)


def test_load_state_dict_materialises_the_lazy_buffers():
    src = nn.BatchNorm2d(4)
    src(graphnet.randn(3, 4, 2, 2))
    fresh = nn.LazyBatchNorm2d()
    fresh.load_state_dict(src.state_dict())
    np.testing.assert_array_equal(fresh.running_mean.numpy(), src.running_mean.numpy())


def test_errors_name_the_uninitialized_buffer_and_the_input_rank():
    bn = nn.LazyBatchNorm2d()
    with pytest.raises(ValueError, match="uninitialized parameter"):
        _ = bn.running_mean.shape
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        bn(graphnet.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.LazyBatchNorm1d()(graphnet.randn(2, 3, 4, 4))


def test_compiling_a_lazy_model_runs_its_first_call_eagerly_then_compiles():
    """torch.compile(lazy_model) works; here the first call materialises the shapes eagerly, the next compiles."""
    m = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    compiled = graphnet.compile(m)
    x = graphnet.randn(2, 3, 6, 6)
    first = compiled(x)
    assert type(m[1]) is nn.BatchNorm2d and type(m[4]) is nn.Linear and compiled.stats() == {}
    ref = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))
    ref.load_state_dict(m.state_dict())
    out = compiled(x)
    assert compiled.stats()["kernels"] > 0
    np.testing.assert_allclose(out.detach().numpy(), ref(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert tuple(first.shape) == (2, 2)
