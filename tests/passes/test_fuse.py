"""fuse: groups are formed as documented, never create a cycle, and preserve the interpreted semantics."""
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphnet.codegen import cpu
from graphnet.core.dtype import float32
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.ir.interpreter import interpret
from graphnet.ir.verify import verify
from graphnet.passes.fuse import fuse

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GRAPHNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kcache"))


def _inputs(graph):
    return [RNG.standard_normal(v.type.shape).astype(np.float32) for v in graph.inputs]


def _fused_nodes(g):
    return [n for n in g.nodes if n.op == "fused"]


def _check(graph, expect_groups=None):
    verify(graph)
    fused = fuse(graph)
    verify(fused)
    assert nx.is_directed_acyclic_graph(fused.to_networkx())
    args = _inputs(graph)
    for want, got in zip(interpret(graph, args), interpret(fused, args)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if expect_groups is not None:
        assert len(_fused_nodes(fused)) == expect_groups
    return fused, args


def _run_compiled(fused, args):
    """Run every fused node through the CPU renderer; other nodes through their NumPy impl."""
    env = dict(zip(fused.inputs, args))
    for node in fused.nodes:
        if node.op in ("input", "output"):
            continue
        ins = [env[v] for v in node.inputs]
        if node.op == "fused":
            outs = [np.empty(v.type.shape, v.type.dtype.np) for v in node.outputs]
            fn = cpu.load(cpu.render(node.attrs["kernel"]))
            fn(*[np.ascontiguousarray(a).reshape(-1) for a in ins], *[o.reshape(-1) for o in outs])
        elif node.op == "constant":
            outs = [node.attrs["value"]]
        else:
            res = node.opdef.impl(*ins, **node.attrs)
            outs = [res] if node.opdef.n_outputs == 1 else list(res)
        env.update(zip(node.outputs, outs))
    return [env[v] for v in fused.outputs]


def _t(*shape):
    return TensorType(shape, float32)


def test_elementwise_chain_is_one_group_and_compiles():
    g = Graph()
    x = g.add_input(_t(1000), "x")
    two = g.add_constant(np.float32(2.0))
    y = g.call("tanh", g.call("relu", g.call("add", g.call("mul", x, two), x)))
    g.set_outputs([g.call("sigmoid", y)])
    fused, args = _check(g, expect_groups=1)
    np.testing.assert_allclose(_run_compiled(fused, args)[0], interpret(g, args)[0], rtol=2e-6, atol=1e-7)


def test_linear_bias_relu_mean_of_squares():
    """matmul stays; bias+relu fuse; the square fuses as the prologue of the mean's reduction."""
    g = Graph()
    x, w, b = g.add_input(_t(8, 5), "x"), g.add_input(_t(3, 5), "w", "param"), g.add_input(_t(3), "b", "param")
    h = g.call("relu", g.call("add", g.call("matmul", x, g.call("permute", w, dims=(1, 0))), b))
    g.set_outputs([g.call("mean", g.call("mul", h, h), dims=None, keepdim=False), h])
    fused, args = _check(g)
    groups = _fused_nodes(fused)
    assert [n.meta["members"] for n in groups] == [["add", "relu"], ["mul", "mean"]]
    assert sum(n.op == "matmul" for n in fused.nodes) == 1
    for want, got in zip(interpret(g, args), _run_compiled(fused, args)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_value_used_on_both_sides_of_a_reduction_is_a_boundary():
    """softmax: exp is read by the sum and by the division, so it is materialised once, never recomputed."""
    g = Graph()
    x = g.add_input(_t(4, 7), "x")
    m = g.call("amax", x, dims=(1,), keepdim=True)
    e = g.call("exp", g.call("sub", x, m))
    s = g.call("sum", e, dims=(1,), keepdim=True)
    g.set_outputs([g.call("div", e, s)])
    fused, args = _check(g, expect_groups=4)
    np.testing.assert_allclose(_run_compiled(fused, args)[0], interpret(g, args)[0], rtol=1e-5)


def test_views_fold_into_strided_reads():
    g = Graph()
    x, b = g.add_input(_t(6, 4), "x"), g.add_input(_t(6), "b")
    xt = g.call("permute", x, dims=(1, 0))
    bb = g.call("expand", g.call("reshape", b, shape=(1, 6)), shape=(4, 6))
    g.set_outputs([g.call("mul", xt, bb)])
    fused, args = _check(g, expect_groups=1)
    assert not [n for n in fused.nodes if n.op in ("permute", "expand", "reshape")]
    np.testing.assert_allclose(_run_compiled(fused, args)[0], interpret(g, args)[0], rtol=1e-6)


def test_basic_index_views_fold_into_offsets_and_strides():
    g = Graph()
    x = g.add_input(_t(4, 5), "x")
    rows = g.call("getitem", x, index=(("slice", 1, None, None), ("slice", None, None, 2)))  # x[1:, ::2]: (3, 3)
    col = g.call("getitem", x, index=(("ellipsis",), ("int", -1)))  # x[..., -1]: (4,)
    tail = g.call("getitem", col, index=(("slice", -3, None, None),))  # (3,)
    row = g.call("getitem", x, index=(("int", 2), ("none",), ("slice", 1, 4, None)))  # x[2, None, 1:4]: (1, 3)
    g.set_outputs([g.call("add", g.call("mul", rows, tail), row)])
    fused, args = _check(g, expect_groups=1)
    np.testing.assert_allclose(_run_compiled(fused, args)[0], interpret(g, args)[0], rtol=1e-6)


UNARY = ["relu", "tanh", "exp", "neg", "sigmoid", "abs"]
BINARY = ["add", "mul", "sub", "maximum"]


@st.composite
def random_graphs(draw):
    """Random DAGs of elementwise (with broadcasting), reductions over random dims and views."""
    g = Graph()
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    vals = [g.add_input(_t(*shape), "x0"), g.add_input(_t(*shape[1:]) if len(shape) > 1 else _t(1), "x1")]
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["u", "b", "r"]))
        a = draw(st.sampled_from(vals))
        if kind == "u":
            vals.append(g.call(draw(st.sampled_from(UNARY)), a))
        elif kind == "b":
            c = draw(st.sampled_from(vals))
            try:
                vals.append(g.call(draw(st.sampled_from(BINARY)), a, c))
            except RuntimeError:
                continue
        elif a.type.shape:
            dim = draw(st.integers(0, len(a.type.shape) - 1))
            vals.append(g.call(draw(st.sampled_from(["sum", "amax", "mean"])), a, dims=(dim,),
                               keepdim=draw(st.booleans())))
    outs = draw(st.lists(st.sampled_from(vals[2:] or vals), min_size=1, max_size=3, unique=True))
    g.set_outputs(outs)
    return g


@settings(max_examples=40, deadline=None)
@given(random_graphs())
def test_random_graphs_keep_semantics(graph):
    _check(graph)


def test_written_back_intermediate_becomes_a_second_output_of_one_group():
    """SGD momentum: buf' = buf * 0.9 + g is written back and feeds p' = p - 0.1 * buf' — one kernel, two outputs."""
    g = Graph()
    p, buf, grad = g.add_input(_t(10), "p", "param"), g.add_input(_t(10), "buf", "state"), g.add_input(_t(10), "g")
    new_buf = g.call("add", g.call("mul", buf, g.add_constant(np.float32(0.9))), grad)
    new_p = g.call("sub", p, g.call("mul", new_buf, g.add_constant(np.float32(0.1))))
    g.set_outputs([], writebacks=[(new_buf, buf, "data"), (new_p, p, "data")])
    fused = fuse(g)
    verify(fused)
    groups = _fused_nodes(fused)
    assert len(groups) == 1 and len(groups[0].outputs) == 2
    args = [RNG.standard_normal(10).astype(np.float32) for _ in range(3)]
    for want, got in zip(interpret(g, args, with_writebacks=True)[1], interpret(fused, args, with_writebacks=True)[1]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
