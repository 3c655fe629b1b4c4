"""Gradient accumulation across calls of a compiled function that calls backward() but leaves zeroing to its
caller (micro-batches, DDP's no_sync): each call adds into the parameters' current `.grad`, whatever happened to
it between calls (zero_grad(set_to_none=True), in-place zeroing, a new tensor assigned), exactly as eager does."""
import copy

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim


def _pair():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    twin = copy.deepcopy(model)

    def make(m):
        def micro_step(x, y):
            loss = F.cross_entropy(m(x), y) / 3
            loss.backward()
            return loss
        return micro_step

    return model, twin, torch.compile(make(model)), make(twin)


def _batches(rounds, micro=3):
    torch.manual_seed(1)
    return [[(torch.randn(6, 5), torch.randint(0, 3, (6,))) for _ in range(micro)] for _ in range(rounds)]


def _assert_grads_equal(model, twin):
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_accumulating_calls_match_eager_over_zero_grad_rounds(set_to_none):
    model, twin, compiled, eager = _pair()
    opts = [optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (model, twin)]
    for batches in _batches(4):
        for opt in opts:
            opt.zero_grad(set_to_none=set_to_none)
        for x, y in batches:
            np.testing.assert_allclose(compiled(x, y).item(), eager(x, y).item(), rtol=1e-5)
            _assert_grads_equal(model, twin)
        for opt in opts:
            opt.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-7)
    # one variant assigns fresh gradients (entry .grad None), one accumulates into them: no more
    assert compiled.stats()["variants"] <= 2


def test_the_stale_gradient_array_is_not_written_after_set_to_none():
    model, _, compiled, _ = _pair()
    opt = optim.SGD(model.parameters(), lr=0.1)
    (x, y), = _batches(1, micro=1)[0]
    for _ in range(3):  # eager warm-up, then the compiled variants
        compiled(x, y)
    stale = model[0].weight.grad
    before = stale.numpy().copy()
    opt.zero_grad(set_to_none=True)
    compiled(x, y)
    np.testing.assert_array_equal(stale.numpy(), before)
    assert model[0].weight.grad is not None and model[0].weight.grad is not stale


def test_an_assigned_gradient_tensor_is_the_one_accumulated_into():
    model, twin, compiled, eager = _pair()
    (x, y), = _batches(1, micro=1)[0]
    for _ in range(3):
        compiled(x, y)
        eager(x, y)
    for m in (model, twin):
        for p in m.parameters():
            p.grad = torch.ones_like(p)
    assigned = model[2].bias.grad
    compiled(x, y)
    eager(x, y)
    _assert_grads_equal(model, twin)
    assert model[2].bias.grad is assigned  # accumulated in place, as eager does
