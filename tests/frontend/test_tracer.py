"""graphnet.trace: recorded graphs match eager results; value-dependent control flow raises GraphBreak."""
import numpy as np
import pytest

import graphnet as torch
from graphnet.ir.verify import verify


def _check(fn, *inputs):
    traced = torch.trace(fn, *inputs)
    verify(traced.graph)
    got, want = traced(*inputs), fn(*inputs)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        if isinstance(w, torch.Tensor):
            np.testing.assert_allclose(g.numpy(), w.detach().numpy(), rtol=1e-6)
        else:
            assert g == w
    return traced


def test_arithmetic_and_broadcasting():
    traced = _check(lambda x, y: ((x * y - 2.0) / (y.abs() + 1.0)).sigmoid(), torch.randn(3, 4), torch.randn(4))
    assert [v.shape for v in traced.graph.inputs] == [(3, 4), (4,)]
    assert traced.graph.outputs[0].shape == (3, 4)


def test_shapes_from_size_and_unrolled_loops():
    def f(x):
        n = x.size(1)
        h = x.view(x.size(0) * n // 2, 2)
        for _ in range(3):
            h = h.tanh() + h
        return h.reshape(n, x.shape[0] // 1 * 2 // 2).sum(0), x.ndim

    traced = _check(f, torch.randn(3, 4))
    ops = [n.op for n in traced.graph.nodes]
    assert ops.count("tanh") == 3 and ops.count("add") == 3
    assert traced(torch.randn(3, 4))[1] == 2


def test_concrete_work_is_recorded_with_constant_inputs():
    """Work on concrete tensors is traced too (it may be state updated in place); `fold` folds it later."""
    table = torch.arange(4.0)

    def f(x):
        return x * (table * 2.0).exp()

    traced = _check(f, torch.randn(2, 4))
    ops = [n.op for n in traced.graph.nodes]
    assert ops.count("constant") == 2 and ops[-3:] == ["exp", "mul", "output"]


def test_in_place_update_of_captured_state_is_traced_not_applied():
    """An optimizer-style `buf.mul_(0.9).add_(g)` becomes graph nodes plus a write-back; the real buffer is
    untouched by tracing and updated by each call."""
    buf = torch.ones(3)

    def f(g):
        buf.mul_(0.9).add_(g)
        return buf * 1

    traced = torch.trace(f, torch.ones(3))
    np.testing.assert_array_equal(buf.numpy(), [1, 1, 1])
    assert [n.op for n in traced.graph.nodes if n.op not in ("input", "constant")] == ["mul", "add", "mul", "output"]
    traced(torch.ones(3))
    np.testing.assert_allclose(buf.numpy(), [1.9, 1.9, 1.9], rtol=1e-6)


def test_graph_break_on_item_names_the_line():
    def f(x):
        return x * x.sum().item()  # the break

    with pytest.raises(torch.GraphBreak, match=r"\.item\(\) on a traced tensor .*test_tracer\.py:\d+ in f"):
        torch.trace(f, torch.randn(3))


def test_graph_break_on_value_dependent_while_loop_reports_its_line():
    def f(X):  # noqa: N803 - the user code this test is about
        while X.abs().sum() > 1:
            X /= 2  # noqa: N806
        return X

    line = f.__code__.co_firstlineno + 1
    with pytest.raises(torch.GraphBreak, match=rf"bool\(\) on a traced tensor .*test_tracer\.py:{line} in f"):
        torch.trace(f, torch.randn(3))


@pytest.mark.parametrize("read", [lambda t: t.tolist(), lambda t: t.numpy(), lambda t: float(t.sum()),
                                  lambda t: np.asarray(t)])
def test_other_value_reads_break(read):
    with pytest.raises(torch.GraphBreak, match="traced tensor"):
        torch.trace(read, torch.randn(2))


def test_symbolic_tensor_repr_and_state_is_restored():
    seen = []
    w = torch.randn(3, requires_grad=True)

    def f(x):
        seen.append(repr(x))
        return x * w

    torch.trace(f, torch.randn(3))
    assert seen == ["tensor(<traced %x: float32[3]>)"]
    assert w._proxy is None and w.grad is None and w.is_leaf
    assert (w * 1.0).grad_fn is not None  # eager again


def test_captured_leaf_requiring_grad_becomes_a_param_input():
    w = torch.randn(3, requires_grad=True)
    traced = torch.trace(lambda x: x * w, torch.randn(3))
    (param,) = traced.graph.inputs_by_role("param")
    assert traced.state[param.name] is w


def test_in_place_update_of_an_input_is_a_write_back():
    def f(x, acc):
        acc.add_(x * 2.0)
        return acc.sum()

    x, acc = torch.randn(3), torch.ones(3)
    traced = torch.trace(f, x, acc)
    (wb,) = traced.graph.writebacks
    assert wb.target.name == "acc" and wb.kind == "data"
    assert "writeback" in str(traced.graph)
    np.testing.assert_array_equal(acc.numpy(), np.ones(3))  # tracing did not touch the real tensor
    out = traced(x, acc)
    np.testing.assert_allclose(acc.numpy(), 1 + 2 * x.numpy(), rtol=1e-6)
    np.testing.assert_allclose(out.item(), acc.numpy().sum(), rtol=1e-6)


def test_traced_training_step_with_backward_matches_eager():
    w = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)

    def step(x):
        loss = ((x.unsqueeze(2) * w.unsqueeze(0)).sum(1) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w.sub_(w.grad * 0.1)
        w.grad = None
        return loss

    x = torch.randn(5, 4, dtype=torch.float64)
    start = w.detach().clone()
    traced = torch.trace(step, x)
    assert [wb.kind for wb in traced.graph.writebacks] == ["data"]
    np.testing.assert_array_equal(w.detach().numpy(), start.numpy())
    traced_loss = traced(x)
    after_traced = w.detach().clone()
    w.data = start.clone()
    eager_loss = step(x)
    np.testing.assert_allclose(traced_loss.numpy(), eager_loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(after_traced.numpy(), w.detach().numpy(), rtol=1e-12)


class FakeModule:
    """Duck-typed module: traced through named_parameters()/named_buffers(), no graphnet.nn needed."""

    def __init__(self):
        self.weight = torch.randn(3, 2, requires_grad=True)
        self.frozen = torch.randn(2)
        self.count = torch.zeros(1)

    def named_parameters(self):
        return [("weight", self.weight), ("frozen", self.frozen)]

    def named_buffers(self):
        return [("count", self.count)]

    def forward(self, x):
        self.count.add_(1.0)
        return (x.unsqueeze(2) * self.weight.unsqueeze(0)).sum(1) + self.frozen

    __call__ = forward


def test_module_parameters_and_buffers_become_inputs_with_roles():
    m = FakeModule()
    x = torch.randn(5, 3)
    traced = torch.trace(m, x)
    roles = {v.name: v.role for v in traced.graph.inputs}
    assert roles == {"x": "input", "weight": "param", "frozen": "param", "count": "buffer"}
    assert [wb.target.name for wb in traced.graph.writebacks] == ["count"]
    assert m.count.item() == 0.0
    np.testing.assert_allclose(traced(x).numpy(), m(x).detach().numpy(), rtol=1e-6)
    assert m.count.item() == 2.0  # one traced call, one eager call


def test_real_nn_module_if_available():
    nn = pytest.importorskip("graphnet.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("graphnet.nn.Linear is not available yet")
    model = nn.Linear(4, 3)
    traced = _check(model, torch.randn(2, 4))
    assert {v.role for v in traced.graph.inputs} == {"input", "param"}
