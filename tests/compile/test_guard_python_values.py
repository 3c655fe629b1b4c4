"""Python values a trace bakes in are guarded: a max_norm captured from a closure variable or a global, a float
argument, and a module attribute such as Embedding.padding_idx changed after the first call each give the eager
result after the change (a new variant), as torch.compile's guards do."""
import copy

import numpy as np

import graphnet as torch
import graphnet.nn as nn
import graphnet.optim as optim

MAX_NORM = 0.01  # read by _global_step: a global the compiled step names


def _twins(seed=0):
    torch.manual_seed(seed)
    model = nn.Linear(4, 3)
    return model, copy.deepcopy(model)


def _assert_same(model, twin):
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


def _run_both(compiled, eager, model, twin, calls=3):
    for _ in range(calls):
        np.testing.assert_allclose(compiled().item(), eager().item(), rtol=1e-5)
        _assert_same(model, twin)


def test_clip_grad_norm_max_norm_from_a_closure_variable_is_guarded():
    model, twin = _twins()
    max_norm = 0.01

    def step_of(m):
        opt = optim.SGD(m.parameters(), lr=0.5)
        x = torch.ones(5, 4)

        def step():
            opt.zero_grad()
            (m(x) ** 2).sum().backward()
            nn.utils.clip_grad_norm_(m.parameters(), max_norm)  # a closure cell of step
            opt.step()
            return m.weight.sum()

        return step

    compiled, eager = torch.compile(step_of(model)), step_of(twin)
    _run_both(compiled, eager, model, twin)
    max_norm = 100.0  # noqa: F841 - read through the closure cell
    _run_both(compiled, eager, model, twin)
    assert compiled.stats()["variants"] == 2


def test_clip_grad_norm_max_norm_from_a_global_is_guarded():
    global MAX_NORM
    model, twin = _twins(1)
    compiled = torch.compile(_global_step(model))
    eager = _global_step(twin)
    try:
        _run_both(compiled, eager, model, twin)
        MAX_NORM = 100.0
        _run_both(compiled, eager, model, twin)
    finally:
        MAX_NORM = 0.01
    assert compiled.stats()["variants"] == 2


def _global_step(model):
    opt = optim.SGD(model.parameters(), lr=0.5)
    x = torch.ones(5, 4)

    def step():
        opt.zero_grad()
        (model(x) ** 2).sum().backward()
        nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
        opt.step()
        return model.weight.sum()

    return step


def test_clip_grad_norm_max_norm_as_a_float_argument_retraces():
    model, twin = _twins(2)
    opt, opt2 = optim.SGD(model.parameters(), lr=0.5), optim.SGD(twin.parameters(), lr=0.5)
    x = torch.ones(5, 4)

    def step(m, o, max_norm):
        o.zero_grad()
        (m(x) ** 2).sum().backward()
        nn.utils.clip_grad_norm_(m.parameters(), max_norm)
        o.step()
        return m.weight.sum()

    compiled = torch.compile(step)
    for max_norm in (0.01, 0.01, 0.01, 100.0, 100.0, 100.0, 0.01):
        np.testing.assert_allclose(compiled(model, opt, max_norm).item(), step(twin, opt2, max_norm).item(),
                                   rtol=1e-5)
        _assert_same(model, twin)
    assert compiled.stats()["variants"] == 2


def _embedding_twins():
    torch.manual_seed(3)
    emb = nn.Embedding(6, 3, padding_idx=1)
    with torch.no_grad():
        emb.weight[1].fill_(0.5)  # a nonzero padding row: its value is looked up, its gradient is not
    return emb, copy.deepcopy(emb)


IDS = torch.tensor([[0, 1, 2], [2, 3, 1]])


def test_compiled_module_sees_a_changed_padding_idx():
    emb, twin = _embedding_twins()
    compiled = torch.compile(emb)
    g = torch.randn(2, 3, 3)
    for padding_idx in (1, 1, 2, 2, None, None):
        emb.padding_idx = twin.padding_idx = padding_idx
        emb.weight.grad = twin.weight.grad = None
        out, ref = compiled(IDS), twin(IDS)
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy())
        (out * g).sum().backward()
        (ref * g).sum().backward()
        np.testing.assert_allclose(emb.weight.grad.numpy(), twin.weight.grad.numpy(), rtol=1e-6)
        if padding_idx is not None:
            assert not emb.weight.grad[padding_idx].any()
    assert compiled.stats()["variants"] == 3


def test_compiled_training_step_sees_a_changed_padding_idx():
    emb, twin = _embedding_twins()

    def step_of(e):
        opt = optim.SGD(e.parameters(), lr=0.1)

        def step(ids):
            opt.zero_grad()
            loss = (e(ids) ** 2).sum()
            loss.backward()
            opt.step()
            return loss

        return step

    compiled, eager = torch.compile(step_of(emb)), step_of(twin)
    for padding_idx in (1, 1, 1, 2, 2, 2):
        emb.padding_idx = twin.padding_idx = padding_idx
        np.testing.assert_allclose(compiled(IDS).item(), eager(IDS).item(), rtol=1e-6)
        np.testing.assert_allclose(emb.weight.detach().numpy(), twin.weight.detach().numpy(), rtol=1e-6)
    assert compiled.stats()["variants"] == 2
