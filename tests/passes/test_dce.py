"""dce: dead compute nodes go, outputs / write-backs / inputs stay, the input graph is untouched."""
import numpy as np

import graphnet as torch
from graphnet.ir.interpreter import interpret
from graphnet.ir.verify import verify
from graphnet.passes import dce


def test_dce_removes_unused_chains_only():
    def f(x):
        dead = (x.exp() * 3.0).sum()  # noqa: F841 - the point of the test
        return x.tanh() + 1.0

    x = torch.randn(3, 4)
    graph = torch.trace(f, x).graph
    out = dce(graph)
    verify(out)
    assert {"exp", "sum", "mul"} <= {n.op for n in graph.nodes}
    assert {n.op for n in out.nodes} == {"input", "constant", "tanh", "add", "output"}
    assert out.meta["dce"]["removed"] == 4  # exp, mul, sum and the now-unused constant 3.0
    np.testing.assert_allclose(interpret(out, [x])[0], f(x).numpy())


def test_dce_keeps_write_backs_and_unused_inputs():
    def f(x, unused, state):
        state.add_(x)
        return x * 2.0

    x, unused, state = torch.randn(3), torch.randn(3), torch.zeros(3)
    graph = torch.trace(f, x, unused, state).graph
    out = dce(graph)
    assert [v.name for v in out.inputs] == ["x", "unused", "state"]
    assert [w.target.name for w in out.writebacks] == ["state"]
    assert "add" in {n.op for n in out.nodes}


def test_dce_is_pure():
    graph = torch.trace(lambda x: (x.exp(), x.sin())[0], torch.randn(2)).graph
    before = str(graph)
    assert "sin" not in {n.op for n in dce(graph).nodes}
    assert str(graph) == before
