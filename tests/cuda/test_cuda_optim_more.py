"""The newer optimizers (Adamax, NAdam, RAdam, Adadelta) and gradient clipping in a compiled CUDA training step
equal the eager CPU run step for step (RAdam across its rho_t > 5 switch)."""
import copy
import warnings

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.optim as optim
from graphnet.nn.utils import clip_grad_norm_

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("name, kwargs, steps", [
    ("RAdam", dict(lr=0.05, weight_decay=0.1), 7),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True), 3),
    ("Adamax", dict(lr=0.05), 3),
    ("Adadelta", dict(lr=0.5), 3),
])
def test_compiled_cuda_step_with_clipping_matches_eager_cpu(name, kwargs, steps):
    torch.manual_seed(0)
    cpu = nn.Linear(3, 2)
    gpu = copy.deepcopy(cpu).cuda()
    opts = [getattr(optim, name)(m.parameters(), **kwargs) for m in (cpu, gpu)]
    x = torch.randn(4, 3)

    def step_fn(model, opt):
        def step(x):
            opt.zero_grad()
            ((model(x) - 1.0) ** 2).mean().backward()
            total = clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            return total
        return step

    eager, compiled = step_fn(cpu, opts[0]), torch.compile(step_fn(gpu, opts[1]))
    xg = x.cuda()
    for i in range(steps):
        with warnings.catch_warnings():
            warnings.simplefilter("error" if i else "ignore")  # no fallback to eager after the first call
            got = compiled(xg)
        want = eager(x)
        np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-5)
        for p, q in zip(gpu.parameters(), cpu.parameters()):
            np.testing.assert_allclose(p.detach().cpu().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert compiled.stats()["variants"] == 1
