"""cse: duplicate nodes and constants merge into their first copy; random, creation and fused nodes never merge."""
import numpy as np
import pytest
from passcheck import run_checked

from graphnet.core.dtype import float32, float64
from graphnet.core.opdef import OpDef
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.ir.ops import OPS
from graphnet.ir.verify import verify
from graphnet.passes import cse
from graphnet.passes.cse import freeze
from graphnet.passes.fuse import fuse

RNG = np.random.default_rng(0)


def _t(*shape, dtype=float32):
    return TensorType(shape, dtype)


def _ops(graph):
    return [n.op for n in graph.nodes]


def _run_cse(graph):
    return run_checked(cse, graph, RNG, rtol=0.0)


def test_duplicate_chains_and_constants_merge():
    g = Graph()
    x = g.add_input(_t(3, 4), "x")
    two_a, two_b = g.add_constant(np.float32(2.0)), g.add_constant(np.float32(2.0))
    left = g.call("mul", g.call("exp", x), two_a)
    right = g.call("mul", g.call("exp", x), two_b)
    g.set_outputs([g.call("sub", left, right), right])
    before = str(g)
    out = _run_cse(g)
    assert _ops(out) == ["input", "constant", "exp", "mul", "sub", "output"]
    assert out.meta["cse"] == {"merged": 3, "constants_merged": 1, "nodes_merged": 2}
    assert out.outputs[1] is out.outputs[0].producer.inputs[0]  # the second output now is the merged mul
    assert str(g) == before  # pure


def test_commutative_ops_merge_in_either_order_but_sub_does_not():
    g = Graph()
    x, y = g.add_input(_t(4), "x"), g.add_input(_t(4), "y")
    g.set_outputs([g.call("add", x, y), g.call("add", y, x), g.call("sub", x, y), g.call("sub", y, x),
                   g.call("maximum", y, x), g.call("maximum", x, y)])
    out = _run_cse(g)
    assert _ops(out).count("add") == 1 and _ops(out).count("sub") == 2 and _ops(out).count("maximum") == 1


def test_attrs_compare_structurally():
    g = Graph()
    x = g.add_input(_t(3, 4), "x")
    g.set_outputs([g.call("sum", x, dims=(1,), keepdim=False), g.call("sum", x, dims=(1,), keepdim=False),
                   g.call("sum", x, dims=(0,), keepdim=False), g.call("sum", x, dims=(1,), keepdim=True),
                   g.call("cast", x, dtype=float64), g.call("cast", x, dtype=float64)])
    out = _run_cse(g)
    assert _ops(out).count("sum") == 3 and _ops(out).count("cast") == 1
    assert out.meta["cse"]["nodes_merged"] == 2


def test_freeze_handles_arrays_floats_and_unhashables():
    assert freeze({"i": np.array([1, 2]), "s": (1, [2.0])}) == freeze({"s": (1, [2.0]), "i": np.array([1, 2])})
    assert freeze(np.array([1, 2])) != freeze(np.array([1, 2], dtype=np.int32))
    assert freeze(np.zeros((2, 1))) != freeze(np.zeros((1, 2)))
    assert freeze(0.0) != freeze(-0.0) and freeze(float("nan")) == freeze(float("nan"))
    assert freeze(True) != freeze(1) and freeze([1]) != freeze((1,))
    assert freeze(slice(1, None, 2)) == freeze(slice(1, None, 2)) != freeze(slice(1, 3, 2))
    unhashable = {1, 2}
    assert freeze(unhashable) == freeze(unhashable) and freeze(unhashable) != freeze({1, 2})
    hash(freeze({"a": [np.ones(3), {"b": slice(None)}]}))


@pytest.mark.parametrize("a, b, merged", [
    (np.float32(1.0), np.float32(1.0), True),
    (np.float32(np.nan), np.float32(np.nan), True),
    (np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), True),
    (np.float32(1.0), np.float64(1.0), False),
    (np.ones((1, 4), np.float32), np.ones((4,), np.float32), False),
    (np.float32(0.0), np.float32(-0.0), False),
    (np.arange(4, dtype=np.float32), np.arange(4, dtype=np.float32)[::-1].copy(), False),
])
def test_constants_merge_only_when_dtype_shape_and_bytes_agree(a, b, merged):
    g = Graph()
    ca, cb = g.add_constant(a), g.add_constant(b)
    g.set_outputs([ca, cb])
    out = _run_cse(g)
    assert (out.outputs[0] is out.outputs[1]) == merged
    assert out.meta["cse"]["constants_merged"] == int(merged)


def _register(monkeypatch, name, kind):
    """A throwaway op for this test only (the registry entry is removed afterwards)."""
    impl = (lambda x: x + RNG.random(x.shape).astype(x.dtype)) if kind == "elementwise" else np.zeros_like
    monkeypatch.setitem(OPS, name, OpDef(name, kind, lambda t: t, impl))


@pytest.mark.parametrize("name, kind", [("rand_like_t", "elementwise"), ("dropout_t", "elementwise"),
                                        ("bernoulli_t", "elementwise"), ("zeros_like_t", "creation")])
def test_random_and_creation_ops_are_never_merged(monkeypatch, name, kind):
    _register(monkeypatch, name, kind)
    g = Graph()
    x = g.add_input(_t(5), "x")
    g.set_outputs([g.call(name, x), g.call(name, x)])
    verify(g)
    out = cse(g)
    assert _ops(out).count(name) == 2 and out.meta["cse"]["merged"] == 0


def test_fused_nodes_are_not_merged():
    g = Graph()
    x = g.add_input(_t(6), "x")
    g.set_outputs([g.call("tanh", g.call("exp", x)), g.call("tanh", g.call("exp", x))])
    fused = fuse(g)
    assert _ops(fused).count("fused") == 2
    out = _run_cse(fused)
    assert _ops(out).count("fused") == 2 and out.meta["cse"]["merged"] == 0


def test_multi_output_nodes_merge_all_outputs():
    g = Graph()
    x = g.add_input(_t(1, 1, 4, 4), "x")
    attrs = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0), "dilation": (1, 1)}
    v1, i1 = g.call("max_pool2d", x, **attrs)
    v2, i2 = g.call("max_pool2d", x, **attrs)
    g.set_outputs([v1, i2, g.call("add", v1, v2)])
    out = _run_cse(g)
    assert _ops(out).count("max_pool2d") == 1
    pool = next(n for n in out.nodes if n.op == "max_pool2d")
    assert out.outputs[:2] == pool.outputs


def test_write_backs_follow_the_merge_and_forward_phase_wins():
    g = Graph()
    x, s = g.add_input(_t(3), "x"), g.add_input(_t(3), "s", "state")
    first = g.call("add", s, x)
    second = g.call("add", s, x)
    first.producer.meta["phase"], second.producer.meta["phase"] = "backward", "forward"
    g.set_outputs([first], [(second, s, "data")])
    out = _run_cse(g)
    (node,) = [n for n in out.nodes if n.op == "add"]
    assert out.writebacks[0].value is node.outputs[0] and node.meta["phase"] == "forward"
