"""BatchNorm vs PyTorch: float32 batch statistics as accurate as float64 sums (two values per channel at a large
mean: resnet18's 1x1 last stage at 32x32 input), eager and compiled, values and gradients; running statistics in a
compiled training step (momentum=None too), affine=False, track_running_stats=False, eval mode, BatchNorm1d on
(N, C) and (N, C, L), and the errors in PyTorch's words, compiled too."""
import numpy as np
import pytest

import graphnet as gn
import graphnet.nn as nn
import graphnet.nn.functional as F

torch = pytest.importorskip("torch")


def _copy(t_module, g_module):
    g_module.load_state_dict({k: gn.tensor(v.detach().numpy()) for k, v in t_module.state_dict().items()})


def _grads(module, x, w, lib, wrap=lambda f: f):
    """Output, input gradient and parameter gradients of sum(module(x) * w), the step run through `wrap`."""
    x, w = lib.tensor(x, requires_grad=True), lib.tensor(w)

    def step(x):
        out = module(x)
        (out * w).sum().backward()
        return out

    out = wrap(step)(x)
    return [out.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in module.parameters()]


@pytest.mark.parametrize("compiled", [False, True])
def test_float32_batch_statistics_of_two_values_at_a_large_mean_match_float64(compiled):
    """E[x^2]-E[x]^2, or a mean rounded once, loses ~1e-3 here (PyTorch float32 itself is 1.2e-3 off float64)."""
    rng = np.random.default_rng(0)
    x = (100 + 0.01 * rng.standard_normal((2, 16, 1, 1))).astype(np.float32)
    w = rng.standard_normal(x.shape).astype(np.float32)
    ref = _grads(torch.nn.BatchNorm2d(16).double(), x.astype(np.float64), w.astype(np.float64), torch)
    g = nn.BatchNorm2d(16)
    got = _grads(g, x, w, gn, gn.compile if compiled else (lambda f: f))
    for a, b in zip(got, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
    np.testing.assert_allclose(g.running_mean.numpy(), 0.1 * x.astype(np.float64).mean((0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(g.running_var.numpy(), 0.9 + 0.1 * x.astype(np.float64).var((0, 2, 3), ddof=1),
                               rtol=1e-6)


CASES = [("BatchNorm2d", (4, 3, 5, 5), {}), ("BatchNorm2d", (4, 3, 2, 2), dict(affine=False)),
         ("BatchNorm2d", (3, 3, 2, 3), dict(track_running_stats=False)), ("BatchNorm2d", (4, 3, 2, 2),
                                                                           dict(momentum=None)),
         ("BatchNorm1d", (6, 3), {}), ("BatchNorm1d", (4, 3, 5), dict(momentum=0.3))]


@pytest.mark.parametrize("cls,shape,kw", CASES, ids=lambda c: str(c))
@pytest.mark.parametrize("compiled", [False, True])
def test_training_steps_then_eval_match_torch(cls, shape, kw, compiled):
    """Three SGD steps (running statistics updated inside the compiled step), then eval-mode output."""
    t = getattr(torch.nn, cls)(3, **kw).double()
    g = getattr(nn, cls)(3, **kw).double()
    assert repr(g) == repr(t)
    if t.affine:
        with torch.no_grad():
            t.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
            t.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    _copy(t, g)
    t_opt = torch.optim.SGD(t.parameters(), lr=0.1) if t.affine else None
    g_opt = gn.optim.SGD(g.parameters(), lr=0.1) if t.affine else None

    def g_step(x):
        out = g(x)
        (out * out * out).mean().backward()
        if g_opt is not None:
            g_opt.step()
            g_opt.zero_grad()
        return out

    run = gn.compile(g_step) if compiled else g_step
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.standard_normal(shape) * 3 + 2
        tx, gx = torch.tensor(x, requires_grad=True), gn.tensor(x, requires_grad=True)
        to = t(tx)
        (to * to * to).mean().backward()
        if t.affine:
            t_opt.step()
            t_opt.zero_grad()
        go = run(gx)
        np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-9)
    for name, v in t.state_dict().items():
        np.testing.assert_allclose(g.state_dict()[name].numpy(), v.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    t.eval(), g.eval()
    x = rng.standard_normal(shape)
    run = gn.compile(g) if compiled else g
    np.testing.assert_allclose(run(gn.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-9,
                               atol=1e-10)


def test_functional_batch_norm_matches_torch_with_running_stats_and_affine():
    rng = np.random.default_rng(2)
    x, rm, rv, w, b = rng.standard_normal((5, 4, 3)), rng.standard_normal(4), rng.random(4) + 0.5, \
        rng.standard_normal(4), rng.standard_normal(4)
    for training in (True, False):
        t_rm, t_rv, g_rm, g_rv = torch.tensor(rm), torch.tensor(rv), gn.tensor(rm), gn.tensor(rv)
        ref = torch.nn.functional.batch_norm(torch.tensor(x), t_rm, t_rv, torch.tensor(w), torch.tensor(b), training,
                                             0.2, 1e-3)
        got = F.batch_norm(gn.tensor(x), g_rm, g_rv, gn.tensor(w), gn.tensor(b), training, 0.2, 1e-3)
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g_rm.numpy(), t_rm.numpy(), rtol=1e-12)
        np.testing.assert_allclose(g_rv.numpy(), t_rv.numpy(), rtol=1e-12)


@pytest.mark.parametrize("compiled", [False, True])
def test_errors_are_pytorchs(compiled):
    wrap = gn.compile if compiled else (lambda f: f)
    with pytest.raises(ValueError, match=r"^Expected more than 1 value per channel when training, got input size "
                                         r"torch\.Size\(\[1, 3\]\)$"):
        wrap(nn.BatchNorm1d(3))(gn.randn(1, 3))
    with pytest.raises(ValueError, match=r"^Expected more than 1 value per channel when training, got input size "
                                         r"torch\.Size\(\[1, 3, 1, 1\]\)$"):
        wrap(nn.BatchNorm2d(3))(gn.randn(1, 3, 1, 1))
    with pytest.raises(ValueError, match=r"^expected 2D or 3D input \(got 4D input\)$"):
        wrap(nn.BatchNorm1d(3))(gn.randn(2, 3, 2, 2))
    with pytest.raises(RuntimeError, match=r"^running_mean should contain 4 elements not 3$"):
        wrap(nn.BatchNorm1d(3))(gn.randn(2, 4, 2))
    with pytest.raises(RuntimeError, match=r"^weight should contain 3 elements not 4$"):
        wrap(lambda x: F.batch_norm(x, None, None, gn.ones(4), training=True))(gn.randn(2, 3))
    with pytest.raises(ValueError, match="running_mean and running_var must either both be None or neither be None"):
        wrap(lambda x: F.batch_norm(x, gn.zeros(3), None, training=True))(gn.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"^running_mean must be defined in evaluation mode$"):
        wrap(lambda x: F.batch_norm(x, None, None))(gn.randn(2, 3))
