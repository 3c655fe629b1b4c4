"""Compiled training steps with binary cross-entropy (BCELoss clamps log at -100 with one bound only) equal eager
graphnet and PyTorch: a tiny VAE over three SGD steps, and BCEWithLogitsLoss(pos_weight=...)."""
import warnings

import numpy as np
import pytest

import graphnet as gn
import graphnet.nn as nn
import graphnet.optim as optim


def _vae(lib):
    """A VAE the size of a unit test: x -> (mu, logvar) -> z = mu + eps * std -> sigmoid decoder."""
    class VAE(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.mu, self.logvar = lib.nn.Linear(8, 6), lib.nn.Linear(6, 3), lib.nn.Linear(6, 3)
            self.dec = lib.nn.Linear(3, 8)

        def forward(self, x):
            h = lib.relu(self.enc(x))
            mu, logvar = self.mu(h), self.logvar(h)
            z = mu + lib.randn_like(mu) * lib.exp(0.5 * logvar)
            return lib.sigmoid(self.dec(z)), mu, logvar

    return VAE()


def _vae_loss(lib, recon, x, mu, logvar):
    bce = lib.nn.functional.binary_cross_entropy(recon, x, reduction="sum")
    return bce - 0.5 * lib.sum(1 + logvar - mu.pow(2) - logvar.exp())


def _train_step(model, opt):
    def step(x):
        opt.zero_grad()
        recon, mu, logvar = model(x)
        loss = _vae_loss(gn, recon, x, mu, logvar)
        loss.backward()
        opt.step()
        return loss

    return step


def test_compiled_vae_training_step_equals_eager_over_three_steps():
    gn.manual_seed(0)
    model, twin = _vae(gn), _vae(gn)
    twin.load_state_dict(model.state_dict())
    x = gn.rand(5, 8)
    eager = _train_step(model, optim.SGD(model.parameters(), lr=0.01))
    compiled_opt = optim.SGD(twin.parameters(), lr=0.01)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="graphnet.compile")  # a fallback to eager would warn
        compiled = gn.compile(_train_step(twin, compiled_opt))
        for i in range(3):
            gn.manual_seed(10 + i)
            want = eager(x)
            gn.manual_seed(10 + i)
            got = compiled(x)
            np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-5)
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_vae_loss_and_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, recon = rng.random((4, 8)), rng.uniform(0.01, 0.99, (4, 8))
    recon[0, 0] = 0.0  # log(0) is clamped to -100
    mu, logvar = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    grads = []
    for lib in (gn, torch):
        ts = [lib.tensor(a, requires_grad=True) for a in (recon, mu, logvar)]
        loss = _vae_loss(lib, ts[0], lib.tensor(x), ts[1], ts[2])
        loss.backward()
        grads.append([loss.detach().numpy()] + [t.grad.numpy() for t in ts])
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)  # torch rounds its 1e-12 guard


def _bce_logits_step(loss_fn):
    def step(logits, target):
        loss = loss_fn(logits, target)
        loss.backward()
        return loss

    return step


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_pos_weight_values_and_gradients_match_pytorch_compiled_and_eager(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    logits, target = rng.standard_normal((6, 4)) * 3, (rng.random((6, 4)) > 0.5).astype(np.float64)
    pos_weight = rng.uniform(0.5, 3.0, 4)
    ref = torch.tensor(logits, requires_grad=True)
    want = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight), reduction=reduction)(
        ref, torch.tensor(target))
    want.sum().backward()
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=gn.tensor(pos_weight), reduction=reduction)
    step = _bce_logits_step(lambda a, b: loss_fn(a, b).sum())
    compiled = gn.compile(step)
    for run in (step, compiled, compiled):
        z = gn.tensor(logits, requires_grad=True)
        got = run(z, gn.tensor(target))
        np.testing.assert_allclose(got.detach().numpy(), want.sum().detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(z.grad.numpy(), ref.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_bce_with_weight_input_and_target_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, t, w = rng.uniform(0.05, 0.95, (3, 4)), rng.random((3, 4)), rng.random((3, 4))
    runs = []
    for lib in (gn, torch):
        a, b = lib.tensor(x, requires_grad=True), lib.tensor(t, requires_grad=True)
        loss = lib.nn.functional.binary_cross_entropy(a, b, weight=lib.tensor(w))
        loss.backward()
        runs.append([loss.detach().numpy(), a.grad.numpy(), b.grad.numpy()])
    for got, want in zip(*runs):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
