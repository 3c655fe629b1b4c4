"""core.bind: one dispatch point, answered by whichever interpreter is active (eager, tracing, graph building)."""
import numpy as np
import pytest

import graphnet
from graphnet.core import bind as core_bind
from graphnet.core import dtype as dt
from graphnet.core.bind import Interpreter, bind, op
from graphnet.core.opdef import OPS, GradContext
from graphnet.core.types import TensorType
from graphnet.frontend.eager import Eager
from graphnet.frontend.tracer import Tracer
from graphnet.ir.builder import GraphBuilder
from graphnet.ir.graph import Graph
from graphnet.ir.interpreter import interpret


def _graph_with_input(shape=(3,), dtype=dt.float32):
    g = Graph()
    return g, g.add_input(TensorType(shape, dtype), "x")


def test_eager_is_the_bottom_interpreter_and_builders_nest_over_it():
    assert isinstance(core_bind.current(), Eager)
    g, x = _graph_with_input()
    with GraphBuilder(g) as outer:
        assert core_bind.current() is outer
        with GraphBuilder(g) as inner:
            assert core_bind.current() is inner
        assert core_bind.current() is outer
    assert isinstance(core_bind.current(), Eager)


def test_interpreters_leave_in_reverse_order():
    g, _ = _graph_with_input()
    outer, inner = GraphBuilder(g), GraphBuilder(g)
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(RuntimeError, match="reverse order of entering"):
        outer.__exit__(None, None, None)
    inner.__exit__(None, None, None)
    outer.__exit__(None, None, None)
    assert isinstance(core_bind.current(), Eager)


def test_the_same_op_call_runs_eagerly_and_builds_a_graph():
    t = graphnet.tensor([1.0, -2.0, 3.0])
    eager = op.mul(op.tanh(t), 2.0)
    assert isinstance(eager, graphnet.Tensor)
    g, x = _graph_with_input()
    with GraphBuilder(g):
        y = op.mul(op.tanh(x), 2.0)
    g.set_outputs([y])
    assert [n.op for n in g.nodes if n.op not in ("input", "output")] == ["constant", "tanh", "mul"]
    np.testing.assert_allclose(interpret(g, [t.numpy()])[0], eager.numpy(), rtol=1e-6)


def test_the_builder_promotes_as_eager_mode_does():
    g, x = _graph_with_input(dtype=dt.int64)
    with GraphBuilder(g):
        half = bind("mul", x, 0.5)   # int64 tensor * Python float -> default float
        root = bind("sqrt", x)       # float_compute lifts integers
    assert half.dtype is dt.float32 and root.dtype is dt.float32
    assert [n.op for n in g.nodes if n.op not in ("input", "constant")] == ["cast", "mul", "cast", "sqrt"]
    assert graphnet.tensor([1, 2]).mul(0.5).dtype is graphnet.float32


def test_the_builder_names_a_foreign_operand():
    g, x = _graph_with_input()
    with GraphBuilder(g), pytest.raises(TypeError, match=r"mul\(\): argument 1 must be a Value or a number, not str"):
        bind("mul", x, "2")
    with GraphBuilder(g), pytest.raises(TypeError, match=r"argument 0 must be a Value or a number, not Tensor"):
        bind("mul", graphnet.ones(3), x)
    with GraphBuilder(g), pytest.raises(TypeError, match=r"reshape\(\): argument 0 must be a Value, not Tensor"):
        bind("reshape", graphnet.ones(3), shape=(3,))
    with pytest.raises(TypeError, match=r"mul\(\): argument 1 must be a Tensor or a number, not str"):
        bind("mul", graphnet.ones(3), "2")


def test_unknown_ops_are_named():
    with pytest.raises(KeyError, match="no op named 'frobnicate' in the registry"):
        bind("frobnicate", graphnet.ones(2))
    with pytest.raises(KeyError, match="no op named 'frobnicate'"):
        op.frobnicate  # noqa: B018 - the lookup itself must raise


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "exp", "mul"])
def test_a_gradient_rule_gives_the_same_numbers_under_every_interpreter(name):
    """The rule is written once with op.*; eager autograd, a trace and graph autodiff all run it."""
    opdef = OPS[name]
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(4).astype(np.float32) for _ in range(2 if name == "mul" else 1)]
    g_out = rng.standard_normal(4).astype(np.float32)

    tensors = [graphnet.tensor(x, requires_grad=True) for x in xs]
    out = bind(name, *tensors)
    out.backward(graphnet.tensor(g_out))
    eager = [t.grad.numpy() for t in tensors]

    g = Graph()
    ins = [g.add_input(TensorType((4,), dt.float32), f"x{i}") for i in range(len(xs))]
    gv = g.add_input(TensorType((4,), dt.float32), "g")
    with GraphBuilder(g):
        y = bind(name, *ins)
        ctx = GradContext(ins, [y], [v.type for v in ins], [y.type], {}, (True,) * len(ins))
        grads = opdef.grad(ctx, gv)
    g.set_outputs(list(grads))
    built = interpret(g, xs + [g_out])

    traced = graphnet.trace(lambda *a: bind(name, *a), *[graphnet.tensor(x) for x in xs])
    assert [n.op for n in traced.graph.nodes if n.op not in ("input", "output")] == [name]
    for e, b in zip(eager, built):
        np.testing.assert_allclose(b, e, rtol=1e-5, atol=1e-6)


def test_an_interpreter_registered_from_outside_sees_every_op_including_rule_internals():
    """A user-level interpreter (here: counting, then delegating to eager) receives each primitive once."""

    class Counting(Interpreter):
        operand = graphnet.Tensor

        def __init__(self):
            self.seen = []

        def process(self, opdef, args, attrs):
            self.seen.append(opdef.name)
            return Eager().process(opdef, args, attrs)

    x = graphnet.tensor([0.5, -1.0])
    with Counting() as counting:
        y = graphnet.tanh(x) * 3
    assert counting.seen == ["tanh", "mul"]
    np.testing.assert_allclose(y.numpy(), np.tanh([0.5, -1.0]) * 3, rtol=1e-6)


def test_tracing_pushes_the_tracer_and_pops_it():
    seen = []
    graphnet.trace(lambda a: seen.append(type(core_bind.current())) or a + 1, graphnet.ones(2))
    assert seen == [Tracer] and isinstance(core_bind.current(), Eager)
