"""InstanceNorm1d/2d/3d, GroupNorm, LocalResponseNorm, LayerNorm over an NCHW tensor's trailing dims and their
functional forms vs PyTorch in float64: values, input and parameter gradients and running statistics over two
training steps then eval, eager and compiled; reprs; the errors in PyTorch's words, compiled too."""
import numpy as np
import pytest

import graphnet as gn
import graphnet.nn as nn
import graphnet.nn.functional as F

torch = pytest.importorskip("torch")

MODULES = [
    ("InstanceNorm1d", (3,), dict(affine=True), (2, 3, 5)),
    ("InstanceNorm1d", (3,), {}, (3, 6)),
    ("InstanceNorm2d", (3,), dict(affine=True, track_running_stats=True), (2, 3, 3, 4)),
    ("InstanceNorm2d", (3,), dict(track_running_stats=True, momentum=0.3), (3, 3, 4)),
    ("InstanceNorm2d", (3,), dict(affine=True, bias=False), (2, 3, 2, 2)),
    ("InstanceNorm3d", (2,), dict(affine=True), (2, 2, 2, 2, 3)),
    ("GroupNorm", (2, 6), {}, (2, 6, 3, 3)),
    ("GroupNorm", (3, 6), dict(affine=False), (2, 6, 4)),
    ("GroupNorm", (6, 6), dict(bias=False), (3, 6, 2, 2)),
    ("LocalResponseNorm", (5,), {}, (2, 7, 3, 3)),
    ("LocalResponseNorm", (2,), dict(alpha=0.5, beta=0.6, k=2.0), (2, 4, 5)),
    ("LocalResponseNorm", (3,), dict(alpha=0.1), (1, 4, 2, 2, 2)),
    ("LayerNorm", ((3, 4, 5),), {}, (2, 3, 4, 5)),
    ("LayerNorm", ((4, 5),), dict(bias=False), (2, 3, 4, 5)),
]


def _pair(cls, args, kw):
    t, g = getattr(torch.nn, cls)(*args, **kw).double(), getattr(nn, cls)(*args, **kw).double()
    rng = np.random.default_rng(3)
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    g.load_state_dict({k: gn.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    return t, g


def _step(module, x, w):
    out = module(x)
    (out * w).sum().backward()
    return out


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("cls,args,kw,shape", MODULES, ids=lambda c: str(c))
def test_module_matches_torch(cls, args, kw, shape, compiled):
    t, g = _pair(cls, args, kw)
    assert repr(g) == repr(t)
    run = gn.compile(lambda x, w: _step(g, x, w)) if compiled else (lambda x, w: _step(g, x, w))
    rng = np.random.default_rng(4)
    for _ in range(2):
        x, w = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
        tx, gx = torch.tensor(x, requires_grad=True), gn.tensor(x, requires_grad=True)
        to, go = _step(t, tx, torch.tensor(w)), run(gx, gn.tensor(w))
        np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    for (name, tp), gp in zip(t.named_parameters(), g.parameters()):
        np.testing.assert_allclose(gp.grad.numpy(), tp.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)
    for name, v in t.state_dict().items():
        np.testing.assert_allclose(g.state_dict()[name].numpy(), v.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    t.eval(), g.eval()
    x = rng.standard_normal(shape)
    out = (gn.compile(g) if compiled else g)(gn.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("use_input_stats", [True, False])
def test_functional_instance_norm_and_group_norm_match_torch(use_input_stats):
    rng = np.random.default_rng(5)
    x, rm, rv, w, b = (rng.standard_normal((3, 4, 5)), rng.standard_normal(4), rng.random(4) + 0.5,
                       rng.standard_normal(4), rng.standard_normal(4))
    t_rm, t_rv, g_rm, g_rv = torch.tensor(rm), torch.tensor(rv), gn.tensor(rm), gn.tensor(rv)
    ref = torch.nn.functional.instance_norm(torch.tensor(x), t_rm, t_rv, torch.tensor(w), torch.tensor(b),
                                            use_input_stats, 0.2, 1e-3)
    got = F.instance_norm(gn.tensor(x), g_rm, g_rv, gn.tensor(w), gn.tensor(b), use_input_stats, 0.2, 1e-3)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_rm.numpy(), t_rm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g_rv.numpy(), t_rv.numpy(), rtol=1e-12)
    ref = torch.nn.functional.group_norm(torch.tensor(x), 2, torch.tensor(w), torch.tensor(b), 1e-3)
    np.testing.assert_allclose(F.group_norm(gn.tensor(x), 2, gn.tensor(w), gn.tensor(b), 1e-3).numpy(), ref.numpy(),
                               rtol=1e-10, atol=1e-12)


def test_float32_instance_and_group_statistics_at_a_large_mean_match_float64():
    rng = np.random.default_rng(6)
    x = (100 + 0.01 * rng.standard_normal((2, 4, 1, 2))).astype(np.float32)
    for name, fn in [("instance_norm", lambda m, a: m.nn.functional.instance_norm(a)),
                     ("group_norm", lambda m, a: m.nn.functional.group_norm(a, 4)),
                     ("layer_norm", lambda m, a: m.nn.functional.layer_norm(a, (2,)))]:
        ref = fn(torch, torch.tensor(x.astype(np.float64))).numpy()
        np.testing.assert_allclose(fn(gn, gn.tensor(x)).numpy(), ref, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_errors_are_pytorchs(compiled):
    wrap = gn.compile if compiled else (lambda f: f)
    with pytest.raises(ValueError, match=r"^num_channels \(6\) must be divisible by num_groups \(4\)$"):
        nn.GroupNorm(4, 6)
    with pytest.raises(RuntimeError, match=r"^Expected number of channels in input to be divisible by num_groups, "
                                           r"but got input of shape \[2, 6, 2\] and num_groups=4$"):
        wrap(lambda x: F.group_norm(x, 4))(gn.randn(2, 6, 2))
    with pytest.raises(RuntimeError, match=r"^Expected weight to be a vector of size equal to the number of channels "
                                           r"in input, but got weight of shape \[5\] and input of shape \[2, 6, 2\]$"):
        wrap(lambda x: F.group_norm(x, 3, gn.ones(5)))(gn.randn(2, 6, 2))
    with pytest.raises(RuntimeError, match=r"^Expected at least 2 dimensions for input tensor but received 1$"):
        wrap(lambda x: F.group_norm(x, 3))(gn.randn(6))
    with pytest.raises(ValueError, match=r"^expected 3D or 4D input \(got 2D input\)$"):
        wrap(nn.InstanceNorm2d(3))(gn.randn(2, 3))
    with pytest.raises(ValueError, match=r"^expected 2D or 3D input \(got 4D input\)$"):
        wrap(nn.InstanceNorm1d(3))(gn.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"^expected input's size at dim=1 to match num_features \(3\), but got: 4\.$"):
        wrap(nn.InstanceNorm2d(3, affine=True))(gn.randn(2, 4, 2, 2))
    with pytest.warns(UserWarning, match="input's size at dim=1 does not match num_features"):
        wrap(nn.InstanceNorm2d(3))(gn.randn(2, 4, 2, 2))
    with pytest.raises(ValueError, match=r"^Expected more than 1 spatial element when training, got input size "
                                         r"torch\.Size\(\[2, 3, 1\]\)$"):
        wrap(F.instance_norm)(gn.randn(2, 3, 1))
    with pytest.raises(RuntimeError, match="^Expected running_mean and running_var to be defined when "
                                           "use_input_stats is false$"):
        wrap(lambda x: F.instance_norm(x, use_input_stats=False))(gn.randn(2, 3, 4))
    with pytest.raises(RuntimeError, match=r"^weight should contain 6 elements not 8$"):
        wrap(lambda x: F.instance_norm(x, weight=gn.ones(4)))(gn.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"^Expected 3D or higher dimensionality +input \(got 2 dimensions\)$"):
        wrap(nn.LocalResponseNorm(2))(gn.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"^Expected weight to be of same shape as normalized_shape, but got "
                                           r"weight of shape \[4\] and normalized_shape = \[3, 4\]$"):
        wrap(lambda x: F.layer_norm(x, (3, 4), gn.ones(4)))(gn.randn(2, 3, 4))
    with pytest.raises(RuntimeError, match=r"^Given normalized_shape=\[3, 4\], expected input with shape \[\*, 3, 4\], "
                                           r"but got input of size\[2, 3, 4, 5\]$"):
        wrap(nn.LayerNorm((3, 4)))(gn.randn(2, 3, 4, 5))
