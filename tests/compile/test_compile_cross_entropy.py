"""Compiled cross-entropy over class indices: the loss and its gradient run as the cross_entropy_rows primitives
(library kernels inside the generated driver, float32) and equal eager results for every reduction and dtype."""
import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim

IGNORE = -100


def _loss_and_grad(reduction):
    def step(x, t, w):
        loss = F.cross_entropy(x, t, reduction=reduction)
        (loss * w if reduction == "none" else loss).sum().backward()
        return loss

    return step


def _inputs(dtype, n=9, c=7):
    torch.manual_seed(1)
    x = torch.randn(n, c, dtype=dtype) * 3
    t = torch.randint(0, c, (n,))
    t[4] = IGNORE
    return x, t, torch.randn(n, dtype=dtype)


def _program(compiled):
    (prog,) = compiled._last.programs
    return prog


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_compiled_loss_and_gradient_equal_eager(reduction, dtype, tol):
    x, t, w = _inputs(dtype)
    step = _loss_and_grad(reduction)
    compiled = torch.compile(step)
    eager_x = x.clone().requires_grad_()
    want = step(eager_x, t, w)
    for _ in range(2):
        cx = x.clone().requires_grad_()
        got = compiled(cx, t, w)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(cx.grad.numpy(), eager_x.grad.numpy(), rtol=tol, atol=tol)
    ops = [n.op for n in compiled.graph("optimized").nodes]
    assert ops.count("cross_entropy_rows") == 1 and ops.count("cross_entropy_rows_backward") == 1
    if dtype is torch.float32:
        source = _program(compiled).driver_sources[0]
        assert "softmax.cross_entropy_rows, " in source and "softmax.cross_entropy_rows_backward, " in source


def test_a_compiled_train_step_holds_the_rows_instead_of_log_softmax_and_one_hot_loops():
    torch.manual_seed(0)
    model, twin = nn.Linear(6, 5), nn.Linear(6, 5)
    twin.load_state_dict(model.state_dict())
    opts = [optim.SGD(m.parameters(), lr=0.1) for m in (model, twin)]
    x, y = torch.randn(11, 6), torch.randint(0, 5, (11,))

    def step(m, opt):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = torch.compile(lambda: step(model, opts[0]))
    for _ in range(3):
        np.testing.assert_allclose(compiled().item(), step(twin, opts[1]).item(), rtol=1e-5)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    traced = {n.op for n in compiled.graph("traced").nodes}
    assert {"cross_entropy_rows", "cross_entropy_rows_backward"} <= traced
    assert not traced & {"log_softmax", "eq", "exp"}
    assert _program(compiled).driver is not None
