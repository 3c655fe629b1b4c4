"""simplify: each algebraic identity fires where it is exact, leaves the graph alone where it is not, and the
rewrites run to a fixed point."""
import numpy as np
import pytest
from passcheck import run_checked

from graphnet.core.dtype import float32, float64, int32
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.passes import simplify

RNG = np.random.default_rng(2)


def _t(*shape, dtype=float32):
    return TensorType(shape, dtype)


def _compute_ops(graph):
    return [n.op for n in graph.nodes if n.op not in ("input", "constant", "output")]


def _run_simplify(graph):
    return run_checked(simplify, graph, RNG, rtol=0.0)


def _binary(op, value, const_first, x_shape=(3, 4), c_shape=()):
    g = Graph()
    x = g.add_input(_t(*x_shape), "x")
    c = g.add_constant(np.full(c_shape, value, np.float32))
    g.set_outputs([g.call(op, c, x) if const_first else g.call(op, x, c)])
    return g


@pytest.mark.parametrize("op, value, const_first, rule", [
    ("mul", 1.0, False, "mul_one"), ("mul", 1.0, True, "mul_one"), ("add", 0.0, False, "add_zero"),
    ("add", 0.0, True, "add_zero"), ("sub", 0.0, False, "sub_zero"), ("div", 1.0, False, "div_one"),
    ("pow", 1.0, False, "pow_one"), ("add", -0.0, False, "add_zero"),
])
def test_identities_return_x(op, value, const_first, rule):
    out = _run_simplify(_binary(op, value, const_first))
    assert out.outputs[0] is out.input("x") and _compute_ops(out) == []
    assert out.meta["simplify"]["rules"] == {rule: 1}
    assert not out.constants  # the unused identity constant is erased too


@pytest.mark.parametrize("op, value, const_first", [
    ("mul", 0.0, False), ("mul", 2.0, False), ("add", 1.0, True), ("sub", 0.0, True), ("div", 1.0, True),
    ("pow", 1.0, True), ("maximum", 0.0, False),
])
def test_non_identities_stay(op, value, const_first):
    out = _run_simplify(_binary(op, value, const_first))
    assert _compute_ops(out) == [op] and out.meta["simplify"]["rewrites"] == 0


def test_identity_that_broadcasts_becomes_an_expand():
    out = _run_simplify(_binary("add", 0.0, False, x_shape=(4,), c_shape=(3, 4)))
    assert _compute_ops(out) == ["expand"] and out.outputs[0].shape == (3, 4)
    assert out.meta["simplify"]["rules"] == {"add_zero": 1}


def test_identity_that_changes_the_dtype_stays():
    g = Graph()
    x = g.add_input(_t(3, dtype=int32), "x")
    g.set_outputs([g.call("mul", x, g.add_constant(np.float32(1.0)))])
    out = _run_simplify(g)
    assert _compute_ops(out) == ["mul"] and out.outputs[0].dtype is float32


def _unary_chain(x_shape, *steps):
    g = Graph()
    v = g.add_input(_t(*x_shape), "x")
    for op, attrs in steps:
        v = g.call(op, v, **attrs)
    g.set_outputs([v])
    return g


@pytest.mark.parametrize("x_shape, steps, ops_after, rules", [
    ((2, 3, 4), [("permute", {"dims": (1, 2, 0)}), ("permute", {"dims": (2, 0, 1)})], [],
     {"permute_permute": 1, "permute_identity": 1}),
    ((2, 3, 4), [("permute", {"dims": (1, 0, 2)}), ("permute", {"dims": (0, 2, 1)})], ["permute"],
     {"permute_permute": 1}),
    ((2, 3), [("permute", {"dims": (0, 1)})], [], {"permute_identity": 1}),
    ((2, 3), [("reshape", {"shape": (6,)}), ("reshape", {"shape": (3, 2)})], ["reshape"], {"reshape_reshape": 1}),
    ((2, 3), [("reshape", {"shape": (6,)}), ("reshape", {"shape": (2, 3)})], [],
     {"reshape_reshape": 1, "reshape_same": 1}),
    ((2, 3), [("reshape", {"shape": (2, 3)})], [], {"reshape_same": 1}),
    ((2, 3), [("neg", {}), ("neg", {})], [], {"neg_neg": 1}),
    ((2, 3), [("neg", {}), ("neg", {}), ("neg", {})], ["neg"], {"neg_neg": 1}),
    ((2, 3), [("cast", {"dtype": float32})], [], {"cast_same": 1}),
    ((2, 3), [("cast", {"dtype": float64})], ["cast"], {}),
    ((2, 3), [("expand", {"shape": (2, 3)})], [], {"expand_same": 1}),
    ((3, 1), [("expand", {"shape": (3, 4)})], ["expand"], {}),
])
def test_movement_and_unary_rules(x_shape, steps, ops_after, rules):
    out = _run_simplify(_unary_chain(x_shape, *steps))
    assert _compute_ops(out) == ops_after and out.meta["simplify"]["rules"] == rules


def test_composed_permute_and_reshape_have_the_right_attrs():
    out = _run_simplify(_unary_chain((2, 3, 4), ("permute", {"dims": (2, 0, 1)}), ("permute", {"dims": (0, 2, 1)})))
    (node,) = [n for n in out.nodes if n.op == "permute"]
    assert node.attrs["dims"] == (2, 1, 0) and node.inputs[0] is out.input("x")


def test_inner_node_with_other_users_survives():
    g = Graph()
    x = g.add_input(_t(2, 3), "x")
    inner = g.call("permute", x, dims=(1, 0))
    g.set_outputs([g.call("permute", inner, dims=(1, 0)), inner])
    out = _run_simplify(g)
    assert out.outputs[0] is out.input("x") and _compute_ops(out) == ["permute"]


def test_broadcast_scalar_constant_feeds_elementwise_ops_directly():
    g = Graph()
    x, y = g.add_input(_t(4, 3), "x"), g.add_input(_t(3), "y")
    c = g.add_constant(np.full((1, 1), 2.5, np.float32))
    wide = g.call("expand", c, shape=(4, 3))
    g.set_outputs([g.call("mul", wide, x), g.call("add", y, wide), g.call("sub", wide, wide)])
    out = _run_simplify(g)
    assert out.meta["simplify"]["rules"] == {"scalar_constant": 2}
    mul, add, sub = (out.outputs[i].producer for i in range(3))
    assert mul.inputs[0].shape == () and mul.inputs[0].producer.attrs["value"] == np.float32(2.5)
    assert add.inputs[1].producer.op == "expand"  # y + 2.5 would be (3,), not (4, 3): the broadcast stays
    assert sub.inputs[0].shape == () and sub.inputs[1].producer.op == "expand"  # one operand keeps the shape
    assert len([v for v in out.constants if not v.shape]) == 1  # one shared 0-d constant


def test_rewrites_chain_to_a_fixed_point():
    """expand(1) * (neg(neg(x)) + 0) ** reshape(reshape(1)) -> x, over several rounds."""
    g = Graph()
    x = g.add_input(_t(2, 3), "x")
    one = g.add_constant(np.ones((1,), np.float32))
    exponent = g.call("reshape", g.call("reshape", one, shape=(1, 1)), shape=(1,))
    body = g.call("add", g.call("neg", g.call("neg", x)), g.add_constant(np.float32(0.0)))
    g.set_outputs([g.call("mul", g.call("expand", one, shape=(2, 3)), g.call("pow", body, exponent))])
    out = _run_simplify(g)
    assert out.outputs[0] is out.input("x") and _compute_ops(out) == [] and not out.constants
    report = out.meta["simplify"]
    assert report["rounds"] >= 2 and report["rewrites"] == sum(report["rules"].values())
    assert {"neg_neg", "add_zero", "pow_one", "mul_one", "scalar_constant"} <= set(report["rules"])


def test_graph_outputs_write_backs_and_meta_are_kept():
    g = Graph()
    x, s = g.add_input(_t(3), "x"), g.add_input(_t(3), "s", "state")
    new_state = g.call("add", g.call("mul", s, g.add_constant(np.float32(1.0))), x)
    perm = g.call("neg", g.call("neg", x))
    node = g.call("reshape", g.call("reshape", x, shape=(3, 1)), shape=(1, 3))
    node.producer.meta["phase"] = "backward"
    g.set_outputs([perm, node], [(new_state, s, "data")])
    before = str(g)
    out = _run_simplify(g)
    assert out.outputs[0] is out.input("x") and out.writebacks[0].value.producer.inputs[0] is out.input("s")
    assert out.outputs[1].producer.meta["phase"] == "backward"
    assert str(g) == before


def test_copy_is_the_identity_on_values():
    g = Graph()
    x = g.add_input(_t(3, 4), "x")
    g.set_outputs([g.call("exp", g.call("copy", g.call("neg", x)))])
    out = _run_simplify(g)
    assert _compute_ops(out) == ["neg", "exp"] and out.meta["simplify"]["rules"] == {"copy": 1}


def test_transposed_matmul_is_produced_in_the_wanted_layout():
    """permute(matmul(x^T, g)) — a weight gradient — becomes matmul(g^T, x): no transposed copy is needed."""
    g = Graph()
    x, grad = g.add_input(_t(64, 5), "x"), g.add_input(_t(64, 3), "g")
    w_grad = g.call("permute", g.call("matmul", g.call("permute", x, dims=(1, 0)), grad), dims=(1, 0))
    g.set_outputs([w_grad])
    out = _run_simplify(g)
    assert out.meta["simplify"]["rules"]["transpose_matmul"] == 1
    matmul = next(n for n in out.nodes if n.op == "matmul")
    assert matmul.inputs[1].name == "x" and matmul.outputs[0].type.shape == (3, 5)


def test_transposed_matmul_with_another_reader_is_kept():
    g = Graph()
    a, b = g.add_input(_t(4, 5), "a"), g.add_input(_t(5, 6), "b")
    m = g.call("matmul", a, b)
    g.set_outputs([g.call("permute", m, dims=(1, 0)), m])
    assert "transpose_matmul" not in _run_simplify(g).meta["simplify"]["rules"]


def _slice_adjoints(g, pieces, shape=(2, 3, 12)):
    """getitem_backward of inputs p<k> (2, 3, stop - start) for each (start, stop) along the last dim of `shape`;
    the second one's index written with an ellipsis."""
    out = []
    for k, (start, stop) in enumerate(pieces):
        p = g.add_input(_t(*shape[:-1], stop - start), f"p{k}")
        lead = (("ellipsis",),) if k == 1 else (("slice", None, None, None),) * (len(shape) - 1)
        out.append(g.call("getitem_backward", p, shape=shape, index=lead + (("slice", start, stop, 1),)))
    return out


def test_a_splits_backward_summed_becomes_one_cat():
    """q, k, v = x.split(4, -1): the three adjoints summed (in any order) are cat(dq, dk, dv), no zero fills."""
    g = Graph()
    dq, dk, dv = _slice_adjoints(g, [(0, 4), (4, 8), (8, 12)])
    g.set_outputs([g.call("add", g.call("add", dk, dv), dq)])
    out = _run_simplify(g)
    assert _compute_ops(out) == ["cat"]
    assert [v.name for v in next(n for n in out.nodes if n.op == "cat").inputs] == ["p0", "p1", "p2"]
    rules = out.meta["simplify"]["rules"]
    assert rules["slice_adjoint_sum"] == 1 and rules["slice_adjoint_whole"] == 1


def test_adjacent_slice_adjoints_become_the_adjoint_of_their_cat():
    g = Graph()
    da, db = _slice_adjoints(g, [(2, 5), (5, 9)])
    g.set_outputs([g.call("add", db, da)])
    out = _run_simplify(g)
    assert _compute_ops(out) == ["cat", "getitem_backward"]
    assert next(n for n in out.nodes if n.op == "getitem_backward").attrs["index"][-1] == ("slice", 2, 9, 1)


def test_runs_of_adjacent_slice_adjoints_are_summed_as_runs():
    """(0:2) + (5:7) + (2:5) + (9:12): runs 0:7 (three pieces, summed out of order) and 9:12."""
    g = Graph()
    a, b, c, e = _slice_adjoints(g, [(0, 2), (5, 7), (2, 5), (9, 12)])
    g.set_outputs([g.call("add", g.call("add", g.call("add", a, b), e), c)])
    out = _run_simplify(g)
    assert sorted(_compute_ops(out)) == ["add", "cat", "getitem_backward", "getitem_backward"]
    assert [v.name for v in next(n for n in out.nodes if n.op == "cat").inputs] == ["p0", "p2", "p1"]


@pytest.mark.parametrize("pieces", [[(0, 4), (8, 12)], [(0, 4), (2, 6)]])
def test_slice_adjoints_that_do_not_meet_stay_a_sum(pieces):
    g = Graph()
    da, db = _slice_adjoints(g, pieces)
    g.set_outputs([g.call("add", da, db)])
    out = _run_simplify(g)
    assert _compute_ops(out) == ["getitem_backward", "getitem_backward", "add"]
