"""The IR: building, printing, rewriting, verifying and interpreting Graphs."""
import networkx as nx
import numpy as np
import pytest

import graphnet as torch
from graphnet.core import dtype as dt
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.ir.interpreter import interpret
from graphnet.ir.verify import VerifyError, verify

F32 = dt.float32


def small_graph():
    """y = tanh(x * w + 2); the second output sums it."""
    g = Graph()
    x = g.add_input(TensorType((4, 3), F32), "x")
    w = g.add_input(TensorType((3,), F32), "w", role="param", target="fc1.weight")
    two = g.add_constant(np.array(2.0, np.float32), "two")
    y = g.call("tanh", g.call("add", g.call("mul", x, w), two))
    g.set_outputs([y, g.call("sum", y, dims=None)])
    return g


def test_printed_form():
    g = small_graph()
    g.output_node._prev.meta["scope"] = "head"
    assert str(g) == "\n".join([
        "graph(%x: float32[4, 3] input, %w: float32[3] param <- fc1.weight):",
        "  %two: float32[] = constant(2.0)",
        "  %0: float32[4, 3] = mul(%x, %w)",
        "  %1: float32[4, 3] = add(%0, %two)",
        "  %2: float32[4, 3] = tanh(%1)",
        "  %3: float32[] = sum(%2, dims=None)  # head",
        "  return (%2, %3)",
    ])


def test_interpreter_matches_numpy_and_eager():
    g = small_graph()
    verify(g)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    y, s = interpret(g, {"x": x, "fc1.weight": w})
    np.testing.assert_allclose(y, np.tanh(x * w + 2), rtol=1e-6)
    eager = (torch.tensor(x) * torch.tensor(w) + 2.0).tanh()
    np.testing.assert_allclose(y, eager.numpy(), rtol=1e-6)
    np.testing.assert_allclose(s, y.sum(), rtol=1e-5)
    assert y.dtype == np.float32 and s.shape == ()


def test_interpreter_argument_errors():
    g = small_graph()
    with pytest.raises(TypeError, match=r"the graph takes 2 inputs \(\['x', 'w'\]\), got 1"):
        interpret(g, [np.zeros((4, 3))])
    with pytest.raises(KeyError, match=r"no value given for graph inputs \['w'\]"):
        interpret(g, {"x": np.zeros((4, 3))})
    with pytest.raises(ValueError, match=r"input %x expects shape \(4, 3\), got \(3, 4\)"):
        interpret(g, [np.zeros((3, 4)), np.zeros(3)])


def test_users_replace_and_erase():
    g = small_graph()
    mul = next(n for n in g.nodes if n.op == "mul")
    x = g.input("x")
    assert x.users == [mul] and x.role == "input" and g.input("w").role == "param"
    assert g.constants[0].role == "constant" and mul.out.role is None
    neg = g.add_node("neg", [x], before=mul).out
    g.replace_all_uses(mul.out, neg)
    assert mul.out.users == [] and neg.users == [next(n for n in g.nodes if n.op == "add")]
    g.erase_node(mul)
    verify(g)
    assert [n.op for n in g.nodes] == ["input", "input", "constant", "neg", "add", "tanh", "sum", "output"]
    with pytest.raises(RuntimeError, match="erase_node: .* still has users"):
        g.erase_node(neg.producer)


def test_sort_repairs_out_of_order_appends():
    g = small_graph()
    tanh = next(n for n in g.nodes if n.op == "tanh")
    late = g.add_node("exp", [g.input("x")]).out  # appended after every node
    g.replace_input(tanh, 0, late)
    with pytest.raises(VerifyError, match="used before it is defined"):
        verify(g)
    g.sort()
    verify(g)
    assert g.nodes.index(late.producer) < g.nodes.index(tanh)


def test_copy_is_independent():
    g = small_graph()
    c, vmap = g.copy_with_map()
    assert str(c) == str(g)
    c.erase_node(c.output_node, force=True)
    assert g.output_node is not None and vmap[g.input("x")] is c.input("x")


def test_topo_order_and_networkx():
    g = small_graph()
    order = g.topo_order()
    assert order == g.nodes
    nxg = g.to_networkx()
    assert nx.is_directed_acyclic_graph(nxg)
    assert nxg.number_of_nodes() == len(g.nodes) and nxg.number_of_edges() == sum(len(n.inputs) for n in g.nodes)


def test_verify_names_the_node_with_a_wrong_type():
    g = small_graph()
    add = next(n for n in g.nodes if n.op == "add")
    add.outputs[0].type = TensorType((4, 4), F32)
    with pytest.raises(VerifyError, match=r"add: recorded output types \['float32\[4, 4\]'\] but the op infers "
                                          r"\['float32\[4, 3\]'\]\n  at: %1: float32\[4, 4\] = add\(%0, %two\)"):
        verify(g)


def test_verify_rejects_a_type_rule_failure_and_unknown_ops():
    g = small_graph()
    g.input("w").type = TensorType((5,), F32)
    with pytest.raises(VerifyError, match=r"mul: type rule rejects the inputs: OpError: mul: The size of tensor a "
                                          r"\(3\) must match .*\n  at: %0: float32\[4, 3\] = mul\(%x, %w\)"):
        verify(g)
    h = small_graph()
    h.add_node("frobnicate", [h.input("x")], out_types=[TensorType((4, 3), F32)])
    with pytest.raises(VerifyError, match="unknown op 'frobnicate'"):
        verify(h)


def test_verify_rejects_inconsistent_users_and_dangling_values():
    g = small_graph()
    g.input("x").users.append(g.output_node)
    with pytest.raises(VerifyError, match="lists a user that is erased or does not read it"):
        verify(g)
    h, other = small_graph(), small_graph()
    foreign = other.input("x")
    node = h.add_node("neg", [foreign])
    with pytest.raises(VerifyError, match="produced by no node of this graph"):
        verify(h)
    assert node.graph is h


def test_verify_rejects_an_ill_typed_write_back():
    g = small_graph()
    y = g.outputs[0]
    g.set_outputs([y], [(y, g.input("w"), "data")])
    with pytest.raises(VerifyError, match=r"write-back %2 \(float32\[4, 3\]\) -> %w \(float32\[3\], data\) is ill"):
        verify(g)


def test_write_backs_print_and_resolve():
    g = small_graph()
    w = g.input("w")
    new_w = g.call("sub", w, g.call("mul", w, g.add_constant(np.array(0.5, np.float32), "lr")))
    g.set_outputs([g.outputs[0]], [(new_w, w, "data")])
    verify(g)
    assert g.writebacks[0].target is w and g.writebacks[0].value is new_w
    assert str(g).endswith(f"return (%2)\n  writeback %{new_w.name} -> %w")
    _, (wb,) = interpret(g, [np.zeros((4, 3)), np.ones(3)], with_writebacks=True)
    np.testing.assert_allclose(wb, np.full(3, 0.5))


def test_add_input_rejects_unknown_roles():
    with pytest.raises(ValueError, match="add_input: role must be one of"):
        Graph().add_input(TensorType((1,), F32), "x", role="weights")
