"""fold: all-constant computations become constants (elementwise ones through broadcasts); big, random, opaque and
failing ones stay."""
import numpy as np
import pytest
from passcheck import run_checked

from graphnet.core.dtype import float32
from graphnet.core.opdef import OpDef
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.ir.ops import OPS
from graphnet.ir.verify import verify
from graphnet.passes import fold
from graphnet.passes.fold import MAX_FOLD_ELEMENTS

RNG = np.random.default_rng(1)


def _t(*shape):
    return TensorType(shape, float32)


def _ops(graph):
    return [n.op for n in graph.nodes]


def _run_fold(graph):
    return run_checked(fold, graph, RNG, rtol=1e-6)


def test_constant_chain_folds_into_one_constant():
    g = Graph()
    x = g.add_input(_t(2, 3), "x")
    a, b = g.add_constant(np.arange(6, dtype=np.float32).reshape(2, 3)), g.add_constant(np.float32(0.5))
    scale = g.call("exp", g.call("mul", g.call("permute", g.call("reshape", a, shape=(3, 2)), dims=(1, 0)), b))
    g.set_outputs([g.call("mul", x, scale)])
    before = str(g)
    out = _run_fold(g)
    assert _ops(out) == ["input", "constant", "mul", "output"]
    assert out.meta["fold"] == {"folded": 4, "skipped_large": 0, "skipped_errors": 0}
    want = np.exp(np.arange(6, dtype=np.float32).reshape(3, 2).T * np.float32(0.5))
    np.testing.assert_allclose(out.constants[0].producer.attrs["value"], want, rtol=1e-6)
    assert str(g) == before


def test_elementwise_ops_fold_through_broadcasts_and_keep_them():
    """div(expand(c), 12) -> expand(c / 12): the small array is computed, the broadcast stays a view."""
    g = Graph()
    x = g.add_input(_t(4, 3), "x")
    one = g.call("expand", g.add_constant(np.ones((1, 1), np.float32)), shape=(4, 3))
    grad = g.call("mul", g.call("div", one, g.add_constant(np.float32(12.0))), g.add_constant(np.float32(2.0)))
    g.set_outputs([g.call("mul", grad, x)])
    out = _run_fold(g)
    assert _ops(out) == ["input", "constant", "expand", "mul", "output"]
    (c,) = out.constants
    assert c.shape == (1, 1) and c.producer.attrs["value"].item() == np.float32(1 / 12) * np.float32(2)
    assert out.meta["fold"]["folded"] == 2


def test_expand_alone_is_not_folded():
    g = Graph()
    g.set_outputs([g.call("expand", g.add_constant(np.float32(3.0)), shape=(5, 5))])
    out = _run_fold(g)
    assert _ops(out) == ["constant", "expand", "output"] and out.meta["fold"]["folded"] == 0


@pytest.mark.parametrize("n, folded", [(MAX_FOLD_ELEMENTS, True), (MAX_FOLD_ELEMENTS + 1, False)])
def test_results_over_the_size_threshold_stay_unfolded(n, folded):
    g = Graph()
    g.set_outputs([g.call("exp", g.add_constant(np.linspace(0, 1, n, dtype=np.float32)))])
    out = _run_fold(g)
    assert ("exp" not in _ops(out)) == folded
    assert out.meta["fold"]["skipped_large"] == int(not folded)


def test_a_big_input_with_a_small_result_folds():
    g = Graph()
    g.set_outputs([g.call("sum", g.add_constant(np.ones((400, 400), np.float32)), dims=None, keepdim=False)])
    out = _run_fold(g)
    assert _ops(out) == ["constant", "output"] and out.constants[0].producer.attrs["value"] == 160000


def test_nodes_with_a_non_constant_input_stay():
    g = Graph()
    x = g.add_input(_t(3), "x")
    g.set_outputs([g.call("add", x, g.call("neg", g.add_constant(np.float32(1.0))))])
    out = _run_fold(g)
    assert _ops(out) == ["input", "constant", "add", "output"]


def test_multi_output_ops_fold_every_output():
    g = Graph()
    c = g.add_constant(RNG.standard_normal((1, 1, 4, 4)).astype(np.float32))
    vals, idx = g.call("max_pool2d", c, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))
    g.set_outputs([vals, idx])
    out = _run_fold(g)
    assert _ops(out) == ["constant", "constant", "output"]
    assert [v.dtype.name for v in out.outputs] == ["float32", "int64"]


def test_folded_constant_keeps_the_node_meta():
    g = Graph()
    c = g.call("neg", g.add_constant(np.float32(2.0)))
    c.producer.meta.update(phase="backward", source="model.py:3")
    g.set_outputs([c])
    out = _run_fold(g)
    assert out.outputs[0].producer.meta == {"phase": "backward", "source": "model.py:3"}


def _register(monkeypatch, name, kind, impl):
    monkeypatch.setitem(OPS, name, OpDef(name, kind, lambda t: t, impl))


def _broken(x):
    raise IndexError("index 7 is out of bounds")


@pytest.mark.parametrize("name, kind, impl, key", [
    ("rand_like_t", "elementwise", lambda x: x + RNG.random(x.shape).astype(x.dtype), None),
    ("zeros_like_t", "creation", np.zeros_like, None),
    ("opaque_t", "opaque", np.copy, None),
    ("broken_t", "elementwise", _broken, "skipped_errors"),
])
def test_random_opaque_and_failing_ops_are_not_folded(monkeypatch, name, kind, impl, key):
    _register(monkeypatch, name, kind, impl)
    g = Graph()
    g.set_outputs([g.call(name, g.add_constant(np.ones(3, np.float32)))])
    verify(g)
    out = fold(g)
    verify(out)
    assert name in _ops(out) and out.meta["fold"]["folded"] == 0
    if key:
        assert out.meta["fold"][key] == 1
