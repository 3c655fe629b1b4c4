"""plan_memory: buffers reused by liveness, in-place only where safe; the planned Program computes what the
interpreter computes (fused groups are run through their subgraphs here, so aliasing bugs show without Numba)."""
import numpy as np
import pytest
from hypothesis import given, settings
from test_fuse import random_graphs

from graphnet.codegen import driver
from graphnet.core.dtype import float32
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.ir.interpreter import interpret
from graphnet.ir.verify import verify
from graphnet.passes.fuse import fuse
from graphnet.passes.plan_memory import plan_memory
from graphnet.runtime import program, steps

RNG = np.random.default_rng(0)


class _InterpretedFused:
    """A fused step that runs the group's subgraph, writing into the planned buffers (the plan is what's tested)."""

    def __init__(self, node, ins, outs, bufs, generic=False, serial=False):
        self.sub, self.ins, self.outs, self.bufs = node.attrs["subgraph"], ins, outs, bufs

    def __call__(self, env):
        results = interpret(self.sub, [env[i].copy() for i in self.ins])
        for slot, buf, r in zip(self.outs, self.bufs, results):
            dst = steps.resolve(buf, env)
            np.copyto(dst, r)
            env[slot] = dst

    def lower(self, d):
        raise driver.NoDriverForm("an interpreted group runs from Python")


@pytest.fixture(autouse=True)
def _interpreted(monkeypatch):
    monkeypatch.setattr(program, "Fused", _InterpretedFused)


def _run_planned(graph, args):
    planned = plan_memory(fuse(graph))
    verify(planned)
    return planned, program.Program(planned).run([a.copy() for a in args])


@settings(max_examples=60, deadline=None)
@given(random_graphs())
def test_planned_programs_match_the_interpreter(graph):
    args = [RNG.standard_normal(v.type.shape).astype(np.float32) for v in graph.inputs]
    _, (outs, _) = _run_planned(graph, args)
    for want, got in zip(interpret(graph, args), outs):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _t(*shape):
    return TensorType(shape, float32)


def test_chain_reuses_buffers_and_reports_peak():
    g = Graph()
    x, w = g.add_input(_t(64, 64), "x"), g.add_input(_t(64, 64), "w")
    h = x
    for _ in range(6):
        h = g.call("relu", g.call("matmul", h, w))
    g.set_outputs([h])
    args = [RNG.standard_normal((64, 64)).astype(np.float32) * 0.2 for _ in range(2)]
    planned, (outs, _) = _run_planned(g, args)
    report = planned.meta["plan_memory"]
    assert report["peak_bytes_after"] < report["peak_bytes_before"] / 2
    np.testing.assert_allclose(outs[0], interpret(g, args)[0], rtol=1e-4, atol=1e-6)


def test_optimizer_style_update_writes_into_the_state_input():
    """buf = buf * 0.9 + g ; p = p - 0.1 * buf: both land in place in the live tensors' storage."""
    g = Graph()
    p, buf, grad = g.add_input(_t(10), "p", "param"), g.add_input(_t(10), "buf", "state"), g.add_input(_t(10), "g")
    new_buf = g.call("add", g.call("mul", buf, g.add_constant(np.float32(0.9))), grad)
    new_p = g.call("sub", p, g.call("mul", new_buf, g.add_constant(np.float32(0.1))))
    g.set_outputs([], writebacks=[(new_buf, buf, "data"), (new_p, p, "data")])
    planned = plan_memory(fuse(g))
    inplace = [n.meta.get("inplace") for n in planned.nodes if n.op == "fused"]
    assert {"p", "buf"} <= {name for d in inplace if d for name in d.values()}
    arrays = [RNG.standard_normal(10).astype(np.float32) for _ in range(3)]
    live = [a.copy() for a in arrays]
    prog = program.Program(planned)
    prog.run(live)
    want_buf = arrays[1] * np.float32(0.9) + arrays[2]
    np.testing.assert_allclose(live[1], want_buf, rtol=1e-6)
    np.testing.assert_allclose(live[0], arrays[0] - np.float32(0.1) * want_buf, rtol=1e-6)
    assert prog.inplace_writebacks == {0, 1}


def test_no_inplace_over_a_value_read_later_or_through_a_view():
    g = Graph()
    x = g.add_input(_t(4, 4), "x")
    a = g.call("exp", x)
    b = g.call("neg", a)
    c = g.call("add", b, g.call("permute", a, dims=(1, 0)))
    g.set_outputs([c])
    planned = plan_memory(fuse(g))
    for n in planned.nodes:
        assert not n.meta.get("inplace"), "a is still read (transposed) after neg; nothing may overwrite it"
    args = [RNG.standard_normal((4, 4)).astype(np.float32)]
    np.testing.assert_allclose(program.Program(planned).run([a.copy() for a in args])[0][0],
                               interpret(g, args)[0], rtol=1e-6)


def test_two_outputs_of_one_kernel_never_overwrite_the_same_input():
    """relu(a) and exp(relu(a)) leave one kernel; a is read for the last time there, but only one may reuse it."""
    g = Graph()
    x = g.add_input(_t(8), "x")
    a = g.call("relu", x)
    b = g.call("relu", a)
    g.set_outputs([b, g.call("exp", b), g.call("relu", x)])
    planned = plan_memory(fuse(g))
    for n in planned.nodes:
        assert len(set((n.meta.get("inplace") or {}).values())) == len(n.meta.get("inplace") or {})
    args = [RNG.standard_normal(8).astype(np.float32)]
    for want, got in zip(interpret(g, args), program.Program(planned).run([a.copy() for a in args])[0]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
