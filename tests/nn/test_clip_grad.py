"""nn.utils.clip_grad_norm_ / clip_grad_value_ vs PyTorch, eagerly and inside a compiled training step."""
import math

import numpy as np
import pytest

import graphnet as gn
from graphnet.nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters

RNG = np.random.default_rng(0)


def _pair(torch):
    grads = [RNG.standard_normal(s).astype(np.float32) for s in ((3, 4), (5,))]
    ours = [gn.zeros(g.shape, requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, t, g in zip(ours, theirs, grads):
        p.grad, t.grad = gn.tensor(g), torch.tensor(g)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    ours, theirs = _pair(torch)
    total = clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_value_matches_torch_and_skips_missing_grads():
    torch = pytest.importorskip("torch")
    ours, theirs = _pair(torch)
    clip_grad_value_(ours + [gn.zeros(2, requires_grad=True)], 0.3)
    torch.nn.utils.clip_grad_value_(theirs, 0.3)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())


def test_nonfinite_norm_raises_when_asked():
    p = gn.zeros(2, requires_grad=True)
    p.grad = gn.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from `parameters` is non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert clip_grad_norm_([], 1.0).item() == 0.0


def test_clip_inside_a_compiled_step_matches_eager():
    def make():
        gn.manual_seed(0)
        model = gn.nn.Linear(4, 3)
        opt = gn.optim.SGD(model.parameters(), lr=0.5)

        def step(x):
            loss = (model(x) * 10).square().sum()
            loss.backward()
            clip_grad_norm_(model.parameters(), 0.1)
            opt.step()
            opt.zero_grad()
            return loss
        return model, step

    (mc, sc), (me, se) = make(), make()
    compiled = gn.compile(sc)
    x = gn.tensor(RNG.standard_normal((2, 4)).astype(np.float32))
    for _ in range(3):
        np.testing.assert_allclose(compiled(x).item(), se(x).item(), rtol=1e-5)
    np.testing.assert_allclose(mc.weight.detach().numpy(), me.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_parameters_round_trip_through_a_vector():
    ps = [gn.zeros(2, 3), gn.zeros(4)]
    vector_to_parameters(gn.arange(10.0), ps)
    np.testing.assert_array_equal(parameters_to_vector(ps).numpy(), np.arange(10.0))
