"""make_dot draws eager autograd graphs as torchviz does: nodes, edges, labels, colours, files, errors."""
import re
import shutil
from collections import Counter

import graphviz
import pytest

import graphnet
from graphnet import viz
from graphnet.viz import make_dot

HAVE_DOT = shutil.which("dot") is not None
NODE = re.compile(r'\t(\S+) \[label=(?:"(.*)"|(\S+))(?: fillcolor=(\S+))?\]\n', re.S)
EDGE = re.compile(r"\t(\S+) -> (\S+)(?: \[(.*)\])?\n")


def parse(dot):
    """({id: (label, fillcolor)}, [(src, dst, attrs)]) from the DOT statements; a later node statement wins."""
    nodes, edges = {}, []
    for stmt in dot.body:
        edge = EDGE.fullmatch(stmt)
        if edge:
            edges.append((edge[1], edge[2], edge[3] or ""))
            continue
        node = NODE.fullmatch(stmt)
        assert node, f"unparsed statement {stmt!r}"
        nodes[node[1]] = (node[2] if node[2] is not None else node[3], node[4])
    return nodes, edges


def leaves(shape=(2, 3), n=2):
    return [graphnet.randn(*shape, requires_grad=True) for _ in range(n)]


def named_edges(dot):
    """Edges as (label, label) pairs; AccumulateGrad nodes are named after the leaf that feeds them."""
    nodes, edges = parse(dot)
    names = {k: label for k, (label, _) in nodes.items()}
    for src, dst, _ in edges:
        if names[dst] == "AccumulateGrad":
            names[dst] = f"Acc({nodes[src][0].split(chr(10))[0]})"
    return sorted((names[s], names[d]) for s, d, _ in edges)


def test_small_graph_nodes_edges_and_labels():
    a, b = leaves()
    dot = make_dot((a * b + a).sum(), params={"a": a, "b": b})
    nodes, edges = parse(dot)
    labels = Counter(label for label, _ in nodes.values())
    assert labels == Counter({"MulBackward0": 1, "AddBackward0": 1, "SumBackward0": 1, "AccumulateGrad": 2,
                              "a\n (2, 3)": 1, "b\n (2, 3)": 1, "\n ()": 1})
    assert len(edges) == 8
    leaf_a, leaf_b = "a\n (2, 3)", "b\n (2, 3)"
    assert named_edges(dot) == sorted([(leaf_a, "Acc(a)"), (leaf_b, "Acc(b)"), ("Acc(a)", "MulBackward0"),
                                       ("Acc(b)", "MulBackward0"), ("MulBackward0", "AddBackward0"),
                                       ("Acc(a)", "AddBackward0"), ("AddBackward0", "SumBackward0"),
                                       ("SumBackward0", "\n ()")])
    colours = {label: colour for label, colour in nodes.values()}
    assert colours["a\n (2, 3)"] == colours["b\n (2, 3)"] == "lightblue"
    assert colours["\n ()"] == "darkolivegreen1"
    assert colours["MulBackward0"] is None  # graphviz's default fill (lightgrey), as in torchviz


def test_graph_style_matches_torchviz():
    a, _ = leaves()
    dot = make_dot(a.sum())
    assert isinstance(dot, graphviz.Digraph)
    assert dot.node_attr == dict(style="filled", shape="box", align="left", fontsize="10", ranksep="0.1",
                                 height="0.2", fontname="monospace")
    assert dot.graph_attr["size"] == "12,12"


def test_params_match_by_identity_and_accept_pairs():
    a, twin = leaves()
    twin.data = a.detach().clone()
    nodes, _ = parse(make_dot((a + twin).sum(), params=[("fc1.weight", a)]))
    leaf_labels = sorted(label for label, colour in nodes.values() if colour == "lightblue")
    assert leaf_labels == ["\n (2, 3)", "fc1.weight\n (2, 3)"]


def test_bad_arguments_raise_clear_errors():
    a, _ = leaves()
    with pytest.raises(TypeError, match=r"make_dot: params must map names to tensors.*got int for 'w'"):
        make_dot(a.sum(), params={"w": 3})
    with pytest.raises(TypeError, match="make_dot: expected a tensor or a tuple/list of tensors, got ndarray"):
        make_dot(a.detach().numpy())


def test_show_saved_draws_saved_tensors_in_orange():
    a, b = leaves()
    y = (a * b).exp().sum()
    nodes, edges = parse(make_dot(y, params={"a": a, "b": b}, show_saved=True))
    names = {k: label for k, (label, _) in nodes.items()}
    undirected = sorted((names[s], names[d]) for s, d, attrs in edges if attrs == "dir=none")
    # mul saved its leaf inputs (drawn once, as the blue leaves); exp saved its result
    assert undirected == [("ExpBackward0", "result\n (2, 3)"), ("MulBackward0", "a\n (2, 3)"),
                          ("MulBackward0", "b\n (2, 3)")]
    assert [label for label, colour in nodes.values() if colour == "orange"] == ["result\n (2, 3)"]
    plain_nodes, plain_edges = parse(make_dot(y))
    assert all(colour != "orange" for _, colour in plain_nodes.values())
    assert all(attrs != "dir=none" for *_, attrs in plain_edges)


def test_saved_intermediate_is_orange_unless_it_is_an_output():
    a, b = leaves()
    h = a * b
    z = h * h
    nodes, edges = parse(make_dot(z, show_saved=True))
    orange = [label for label, colour in nodes.values() if colour == "orange"]
    assert orange == ["self\n (2, 3)"]
    to_h = [(s, d) for s, d, attrs in edges if attrs == "dir=none" and nodes[d][1] == "orange"]
    assert len(to_h) == 2 and all(nodes[s][0] == "MulBackward0" for s, _ in to_h)  # saved as self and as other
    nodes, _ = parse(make_dot((z, h), params={"h": h}, show_saved=True))
    assert ("h\n (2, 3)", "darkolivegreen1") in nodes.values()
    assert all(colour != "orange" for _, colour in nodes.values())


def attr_rows(label):
    name, rule, *rows = label.split("\n")
    assert set(rule) == {"-"} and len(rule) >= len(name)
    return name, dict((part.strip() for part in row.split(":", 1)) for row in rows)


def test_show_attrs_lists_op_attributes_and_saved_tensors():
    a, b = leaves()
    y = (a * b).sum(dim=1, keepdim=True)
    nodes, _ = parse(make_dot(y, show_attrs=True))
    by_name = dict(attr_rows(label) for label, colour in nodes.values() if colour is None and label != "AccumulateGrad")
    assert by_name["SumBackward0"]["op"] == "sum"
    assert by_name["SumBackward0"]["keepdim"] == "True"
    assert by_name["SumBackward0"]["dims"] == "(1,)"
    assert by_name["MulBackward0"] == {"op": "mul", "self": "[saved tensor]", "other": "[saved tensor]"}
    plain, _ = parse(make_dot(y))
    assert {"SumBackward0", "MulBackward0"} <= {label for label, _ in plain.values()}


def test_show_attrs_truncates_long_values():
    a, b = leaves()
    nodes, _ = parse(make_dot(a * b, show_attrs=True, max_attr_chars=5))
    label = next(label for label, _ in nodes.values() if label.startswith("MulBackward0"))
    _, rows = attr_rows(label)
    assert rows == {"op": "mul", "self": "[s...", "other": "[s..."}


def test_tuple_and_list_outputs_share_the_graph():
    a, _ = leaves()
    outs = (a * 2, a + 1)
    for var in (outs, list(outs)):
        nodes, edges = parse(make_dot(var, params={"a": a}))
        colours = Counter(colour for _, colour in nodes.values())
        assert colours == Counter({"darkolivegreen1": 2, "lightblue": 1, None: 3})
        assert len(edges) == 5


def test_leaf_output_is_a_single_green_node():
    a, _ = leaves()
    nodes, edges = parse(make_dot(a, params={"a": a}))
    assert list(nodes.values()) == [("a\n (2, 3)", "darkolivegreen1")] and edges == []


def test_view_output_links_its_base_dotted():
    a, _ = leaves()
    y = a * 2
    nodes, edges = parse(make_dot(y.view(6)))
    dotted = [(nodes[s], nodes[d]) for s, d, attrs in edges if attrs == "style=dotted"]
    assert dotted == [(("\n (2, 3)", "darkolivegreen3"), ("\n (6)", "darkolivegreen1"))]


def test_deep_chain_draws_without_recursion():
    (a,) = leaves(shape=(3,), n=1)
    x = a
    for _ in range(3000):
        x = x * 1.0001
    nodes, edges = parse(make_dot(x))
    assert Counter(label for label, _ in nodes.values())["MulBackward0"] == 3000
    assert len(nodes) == 3003 and len(edges) == 3002
    assert float(dot_size(make_dot(x))) > 12  # the page grows with the graph, like torchviz's resize_graph


def dot_size(dot):
    return dot.graph_attr["size"].split(",")[0]


MAGIC = {"pdf": b"%PDF", "png": b"\x89PNG", "svg": b"<svg"}


@pytest.mark.skipif(not HAVE_DOT, reason="the Graphviz 'dot' program is not installed")
@pytest.mark.parametrize("fmt", sorted(MAGIC))
def test_render_writes_files(tmp_path, fmt):
    a, b = leaves()
    dot = make_dot((a * b).sum(), params={"a": a, "b": b})
    out = dot.render(str(tmp_path / "lenet"), format=fmt)
    assert out.endswith(f"lenet.{fmt}") and MAGIC[fmt] in (tmp_path / f"lenet.{fmt}").read_bytes()[:400]
    for stem, name in (f"graph.{fmt}", f"graph.{fmt}"), ("plain", f"plain.{fmt}"):
        written = viz.render(dot, tmp_path / stem, format=fmt)
        assert written.endswith(name) and MAGIC[fmt] in (tmp_path / name).read_bytes()[:400]


def test_missing_dot_program_says_how_to_install(tmp_path, monkeypatch):
    a, _ = leaves()
    dot = make_dot(a.sum())
    monkeypatch.setenv("PATH", str(tmp_path))
    advice = r"Graphviz 'dot' program.*apt-get install graphviz.*brew install graphviz"
    with pytest.raises(RuntimeError, match=advice):
        viz.render(dot, tmp_path / "g", format="svg")
    with pytest.raises(RuntimeError, match=advice):
        dot.render(tmp_path / "g", format="pdf")
    with pytest.raises(graphviz.ExecutableNotFound, match=advice):
        dot.pipe(format="svg")
