"""Eager autograd: propagation, accumulation, hooks, graph freeing, version counters, grad modes, Variable."""
import numpy as np
import pytest

import graphnet as torch
from graphnet.autograd import Variable, gradcheck
from graphnet.autograd.gradcheck import GradcheckError


def test_requires_grad_propagates_iff_an_input_requires_it():
    a, b = torch.ones(2, requires_grad=True), torch.ones(2)
    assert (a * b).requires_grad and not (b * b).requires_grad
    assert (a * b).grad_fn.name() == "MulBackward0" and (b * b).grad_fn is None


def test_norm_loop_and_backward_with_gradient():
    x = torch.randn(3, requires_grad=True)
    y = x * 2
    while (y.data * y.data).sum().sqrt() < 1000:
        y = y * 2
    y.backward(torch.FloatTensor([0.1, 1.0, 0.0001]))
    scale = (y / x).detach().numpy()[0]
    np.testing.assert_allclose(x.grad.numpy(), scale * np.array([0.1, 1.0, 0.0001], np.float32), rtol=1e-6)


def test_backward_on_non_scalar_needs_gradient():
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (torch.ones(3, requires_grad=True) * 2).backward()


def test_gradients_accumulate_across_backward_calls():
    x = torch.ones(2, requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6, 6])


def test_second_backward_through_freed_graph_says_retain_graph():
    x = torch.ones(2, requires_grad=True)
    z = (x * x).sum()
    z.backward()
    with pytest.raises(RuntimeError, match="Specify retain_graph=True"):
        z.backward()


def test_retain_graph_allows_second_backward():
    x = torch.ones(2, requires_grad=True)
    z = (x * x).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4, 4])


def test_inplace_change_to_saved_tensor_is_detected():
    a = torch.ones(3, requires_grad=True)
    b = a.exp()
    c = b * 2
    b.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[graphnet.FloatTensor \[3\]\], which "
                                           r"is output 0 of ExpBackward0, is at version 1; expected version 0"):
        c.sum().backward()


def test_inplace_on_leaf_requiring_grad_is_refused_but_allowed_under_no_grad():
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        w.mul_(2)
    with torch.no_grad():
        w.mul_(2)
    np.testing.assert_allclose(w.detach().numpy(), [2, 2])


def test_inplace_on_non_leaf_adopts_new_grad_fn():
    x = torch.ones(2, requires_grad=True)
    y = x * 2
    y.add_(1)
    assert y.grad_fn.name() == "AddBackward0"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


def test_next_functions_walk_reaches_accumulate_grad():
    x = torch.ones(2, requires_grad=True)
    loss = ((x * 2) + 1).sum()
    add = loss.grad_fn.next_functions[0][0]
    mul = add.next_functions[0][0]
    acc = mul.next_functions[0][0]
    assert (add.name(), mul.name(), acc.name()) == ("AddBackward0", "MulBackward0", "AccumulateGrad")
    assert acc.variable is x


def test_retain_grad_and_hooks():
    x = torch.ones(2, requires_grad=True)
    y = x * 3
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    x.register_hook(lambda g: g * 10)
    y.sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [1, 1])
    np.testing.assert_allclose(seen[0], [1, 1])
    np.testing.assert_allclose(x.grad.numpy(), [30, 30])


def test_hook_handle_removes_hook():
    x = torch.ones(2, requires_grad=True)
    h = x.register_hook(lambda g: g * 10)
    h.remove()
    x.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1, 1])


def test_grad_modes():
    x = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        assert not (x * 2).requires_grad
        with torch.enable_grad():
            assert (x * 2).requires_grad
    with torch.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert torch.is_grad_enabled()
    with torch.inference_mode():
        assert not (x * 2).requires_grad and torch.is_inference_mode_enabled()

    @torch.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and torch.is_grad_enabled()


def test_volatile_variable_makes_everything_non_grad_and_saves_nothing():
    v = Variable(torch.ones(2, 2), volatile=True)
    w = torch.ones(2, 2, requires_grad=True)
    r = (v * w).exp().sum()
    assert r.volatile and not r.requires_grad and r.grad_fn is None
    with pytest.raises(ValueError, match="volatile and requires_grad=True contradict"):
        Variable(torch.ones(1), requires_grad=True, volatile=True)


def test_detach_shares_storage_and_cuts_graph():
    x = torch.ones(2, requires_grad=True)
    d = (x * 2).detach()
    assert d.grad_fn is None and not d.requires_grad
    y = x * 2
    y.detach_()
    assert y.is_leaf and not y.requires_grad


def test_requires_grad_only_on_floats_and_leaves():
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        torch.tensor([1, 2], requires_grad=True)
    y = torch.ones(1, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad = False


def test_functional_grad_does_not_touch_dot_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = torch.tensor([3.0], requires_grad=True)
    (gx,) = torch.autograd.grad((x * x).sum(), x)
    np.testing.assert_allclose(gx.numpy(), [2, 4])
    assert x.grad is None
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        torch.autograd.grad((x * 2).sum(), [x, y])
    gx2, gy = torch.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gy is None


def test_create_graph_gives_second_derivative():
    x = torch.tensor([2.0], requires_grad=True)
    (g,) = torch.autograd.grad((x ** 3).sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(g2.numpy(), [12.0])


def test_gradcheck_detects_a_wrong_gradient():
    from graphnet.ir.ops import OPS

    x = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)
    rule = OPS["sin"].grad
    OPS["sin"].grad = lambda c, g: (g,)
    try:
        with pytest.raises(GradcheckError, match="Jacobian mismatch"):
            gradcheck(torch.sin, (x,))
        assert not gradcheck(torch.sin, (x,), raise_exception=False)
    finally:
        OPS["sin"].grad = rule
    with pytest.raises(GradcheckError, match="need float64"):
        gradcheck(torch.sin, (torch.ones(1, requires_grad=True),))
