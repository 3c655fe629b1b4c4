"""remainder / fmod and the `%` operators: values vs PyTorch (int and float, every sign), gradients, compiled."""
import numpy as np
import pytest

import graphnet
from graphnet.autograd import gradcheck

torch = pytest.importorskip("torch")

A = np.array([5.5, -3.25, 7.0, -8.0, 0.0, 2.0, -0.75])
B = np.array([2.0, 2.0, -3.0, -3.0, 1.5, 0.5, 4.0])


@pytest.mark.parametrize("name", ["remainder", "fmod"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_values_match_torch(name, dtype):
    a, b = (A * 4).astype(dtype), np.where(B * 2 == 0, 1, B * 2).astype(dtype)
    ga, gb, ta, tb = graphnet.tensor(a), graphnet.tensor(b), torch.tensor(a), torch.tensor(b)
    for g, t in [(getattr(graphnet, name)(ga, gb), getattr(torch, name)(ta, tb)),
                 (getattr(graphnet, name)(ga, 3), getattr(torch, name)(ta, 3)),
                 (getattr(ga, name)(-2.5), getattr(ta, name)(-2.5))]:
        assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-6, atol=1e-6)


def test_mod_operators_match_torch():
    ga, ta = graphnet.tensor(A), torch.tensor(A)
    gi, ti = graphnet.tensor([7, -7, 9]), torch.tensor([7, -7, 9])
    for g, t in [(ga % 2, ta % 2), (ga % -1.5, ta % -1.5), (10 % graphnet.tensor(B), 10 % torch.tensor(B)),
                 (gi % 4, ti % 4), (gi % -4, ti % -4), (ga % graphnet.tensor(B), ta % torch.tensor(B))]:
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-12, atol=1e-12)
    gi %= 3
    ti %= 3
    np.testing.assert_array_equal(gi.numpy(), ti.numpy())
    out = graphnet.empty(len(A), dtype=graphnet.float64)
    graphnet.fmod(ga, 2, out=out)
    np.testing.assert_allclose(out.numpy(), torch.fmod(ta, 2).numpy())


@pytest.mark.parametrize("name", ["remainder", "fmod"])
def test_gradients_match_finite_differences_and_torch(name):
    a = graphnet.tensor(A + 0.1, requires_grad=True)  # away from the jumps of floor/trunc
    b = graphnet.tensor(B, requires_grad=True)
    assert gradcheck(getattr(graphnet, name), (a, b))
    getattr(graphnet, name)(a, b).sum().backward()
    ta, tb = torch.tensor(A + 0.1, requires_grad=True), torch.tensor(B, requires_grad=True)
    getattr(torch, name)(ta, tb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())


def test_compiled_matches_eager():
    def f(x, y):
        return x % y + graphnet.fmod(x, 3.0) - (x % 2)

    x, y = graphnet.tensor(A), graphnet.tensor(B)
    np.testing.assert_allclose(graphnet.compile(f)(x, y).numpy(), f(x, y).numpy(), rtol=1e-12, atol=1e-12)
