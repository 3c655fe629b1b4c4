"""draw_graph: IR graphs at each stage drawn with the documented nodes, edges, colours, clusters and legend."""
import re
import shutil

import graphviz
import numpy as np
import pytest

import graphnet
import graphnet.nn as nn
from graphnet.core.dtype import float32
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.passes import autodiff, dce, prune_grads
from graphnet.passes.fuse import fuse
from graphnet.viz import draw_graph, render

HAVE_DOT = shutil.which("dot") is not None
ATTRS = r'(?:[^\]"]|"(?:[^"\\]|\\.)*")*'
STMT = re.compile(rf'\s*(?:(?:di)?graph \{{|subgraph (?P<sub>\S+) \{{|(?P<close>\}})|(?P<src>\S+) -> (?P<dst>\S+)'
                  rf'(?: \[(?P<eattrs>{ATTRS})\])?|(?P<id>\S+) \[(?P<nattrs>{ATTRS})\])')
ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')


def _attrs(text):
    return {k: v[1:-1].replace('\\"', '"') if v.startswith('"') else v for k, v in ATTR.findall(text or "")}


class Drawing:
    """nodes {id: attrs + 'cluster' (innermost cluster name)}, edges [(src, dst, attrs)], clusters {name: attrs}."""

    def __init__(self, dot):
        self.nodes, self.edges, self.clusters, stack, pos = {}, [], {}, [], 0
        source = dot.source
        while source[pos:].strip():
            m = STMT.match(source, pos)
            assert m, f"unparsed DOT at {source[pos:pos + 80]!r}"
            pos = m.end()
            if m["sub"]:
                stack.append(m["sub"])
                self.clusters[m["sub"]] = {"parent": stack[-2] if len(stack) > 1 else None}
            elif m["close"]:
                stack = stack[:-1]
            elif m["src"]:
                self.edges.append((m["src"], m["dst"], _attrs(m["eattrs"])))
            elif m["id"] == "graph" and stack:
                self.clusters[stack[-1]].update(_attrs(m["nattrs"]))
            elif m["id"] not in (None, "graph", "node", "edge"):
                self.nodes[m["id"]] = dict(_attrs(m["nattrs"]), cluster=stack[-1] if stack else None)

    def label(self, nid):
        return self.nodes[nid]["label"]

    def by_label(self, label):
        found = [k for k, a in self.nodes.items() if a.get("label") == label]
        assert len(found) == 1, f"{len(found)} nodes labelled {label!r}; labels: {self.labels()}"
        return found[0]

    def labels(self):
        return sorted(a.get("label", k) for k, a in self.nodes.items() if k != "legend")

    def named_edges(self):
        return sorted((self.label(s), self.label(d), a.get("label")) for s, d, a in self.edges)

    def legend(self):
        return self.nodes["legend"]["label"].split("\\l")


def small_graph():
    """x @ fc1.weight * 2.0, built by hand."""
    g = Graph()
    x = g.add_input(TensorType((2, 3), float32), "x")
    w = g.add_input(TensorType((3, 4), float32), "fc1.weight", "param")
    c = g.add_constant(np.float32(2.0))
    g.set_outputs([g.call("mul", g.call("matmul", x, w), c)])
    return g


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        h = graphnet.relu(self.fc1(x))
        return self.fc2(h)


@pytest.fixture(scope="module")
def mlp():
    graphnet.manual_seed(0)
    return graphnet.trace(MLP(), graphnet.randn(2, 4))


def compute_ids(d):
    return [k for k, a in d.nodes.items() if k.startswith("n") and a.get("fillcolor") not in
            ("yellow", "lightblue", "gray90", "pink", "lightcyan")]


def count_ops(graph):
    return sum(n.op not in ("input", "constant", "output") for n in graph.nodes)


def test_small_graph_nodes_edges_labels_and_colours():
    d = Drawing(draw_graph(small_graph()))
    assert d.labels() == ["2.0", "fc1.weight\n(3, 4)", "matmul", "mul", "output\n(2, 4)", "x\n(2, 3)"]
    assert d.named_edges() == sorted([("x\n(2, 3)", "matmul", "float32[2,3]"),
                                      ("fc1.weight\n(3, 4)", "matmul", "float32[3,4]"),
                                      ("matmul", "mul", "float32[2,4]"), ("2.0", "mul", "float32[]"),
                                      ("mul", "output\n(2, 4)", "float32[2,4]")])
    node = {label: d.nodes[d.by_label(label)] for label in d.labels()}
    assert node["x\n(2, 3)"]["fillcolor"] == "yellow" and node["x\n(2, 3)"]["shape"] == "ellipse"
    assert node["fc1.weight\n(3, 4)"]["fillcolor"] == "lightblue" and "shape" not in node["fc1.weight\n(3, 4)"]
    assert node["output\n(2, 4)"]["fillcolor"] == "darkgreen"
    assert float(node["2.0"]["fontsize"]) < 10 and node["2.0"]["fillcolor"].startswith("gray")
    assert "fillcolor" not in node["matmul"]  # the default grey of an op
    assert d.legend()[0] == "graph: traced graph, 2 ops"


def test_show_shapes_false_drops_edge_labels():
    d = Drawing(draw_graph(small_graph(), show_shapes=False))
    assert len(d.edges) == 5 and all("label" not in a for *_, a in d.edges)


def test_op_labels_show_key_attrs_compactly():
    g = Graph()
    x = g.add_input(TensorType((1, 2, 8, 8), float32), "x")
    w = g.add_input(TensorType((3, 2, 3, 3), float32), "w", "param")
    y = g.call("conv2d", x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    z = g.call("conv2d", y, g.add_input(TensorType((4, 3, 1, 1), float32), "w2", "param"), stride=(2, 1),
               padding=(1, 1), dilation=(2, 2), groups=1)
    g.set_outputs([g.call("sum", z, dims=(1,), keepdim=True)])
    labels = Drawing(draw_graph(g)).labels()
    assert {"conv2d s=1 p=0", "conv2d s=2,1 p=1 d=2", "sum dims=1 keepdim"} <= set(labels)


def test_writebacks_are_dashed_edges_back_to_their_targets():
    g = Graph()
    x = g.add_input(TensorType((3,), float32), "x")
    w = g.add_input(TensorType((3,), float32), "w", "param")
    s = g.add_input(TensorType((3,), float32), "running", "buffer")
    y = g.call("mul", w, x)
    g.set_outputs([y], [(g.call("add", s, y), s, "data"), (g.call("neg", x), w, "grad")])
    d = Drawing(draw_graph(g))
    dashed = sorted((d.label(s), d.label(t), a["label"]) for s, t, a in d.edges if a.get("style") == "dashed")
    assert dashed == [("add", "running\n(3)", "float32[3]\nwrites back"), ("neg", "w\n(3)", "float32[3]\nsets .grad")]
    assert all(a["constraint"] == "false" for *_, a in d.edges if a.get("style") == "dashed")
    assert d.nodes[d.by_label("running\n(3)")]["fillcolor"] == "lightcyan"


def test_traced_train_step_draws_its_writebacks_and_is_its_own_joint_graph():
    lin = nn.Linear(3, 2)
    opt = graphnet.optim.SGD(lin.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = lin(x).sum()
        loss.backward()
        opt.step()
        return loss

    traced = graphnet.trace(step, graphnet.randn(4, 3))
    d = Drawing(draw_graph(traced, stage="joint"))
    kinds = sorted(a["label"].split("\n")[1] for *_, a in d.edges if a.get("style") == "dashed")
    assert kinds == ["sets .grad", "sets .grad", "writes back", "writes back"]
    assert len(compute_ids(d)) == count_ops(traced.graph)


def test_traced_stage_of_a_traced_model_matches_its_graph(mlp):
    d = Drawing(draw_graph(mlp))
    assert draw_graph(mlp).source == draw_graph(mlp.graph).source
    assert {"fc1.weight\n(8, 4)", "fc1.bias\n(8)", "fc2.weight\n(3, 8)", "fc2.bias\n(3)"} <= set(d.labels())
    assert len(compute_ids(d)) == count_ops(mlp.graph)
    assert "relu" in d.labels()


def test_joint_stage_colours_backward_ops_and_names_gradients(mlp):
    before = str(mlp.graph)
    d = Drawing(draw_graph(mlp, stage="joint"))
    assert str(mlp.graph) == before  # the passes ran on copies
    joint = autodiff(mlp.graph)
    n_backward = sum(n.meta.get("phase") == "backward" and n.op not in ("input", "constant") for n in joint.nodes)
    pink = [k for k, a in d.nodes.items() if a.get("fillcolor") == "lightpink"]
    assert len(pink) == n_backward > 0
    outputs = sorted(a["label"] for a in d.nodes.values() if a.get("fillcolor") == "darkgreen")
    assert outputs == ["grad fc1.bias\n(8)", "grad fc1.weight\n(8, 4)", "grad fc2.bias\n(3)",
                       "grad fc2.weight\n(3, 8)", "output\n(2, 3)"]
    assert "grey: forward ops, pink: backward ops" in d.legend()


def test_optimized_stage_drops_pruned_gradients_and_reports_them(mlp):
    joint = autodiff(mlp.graph, wrt=["x", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
    full = Drawing(draw_graph(joint, stage="joint"))
    assert "grad x\n(2, 4)" in full.labels()
    d = Drawing(draw_graph(joint, stage="optimized"))
    assert "grad x\n(2, 4)" not in d.labels()
    pruned = prune_grads(joint, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
    report = pruned.meta["prune_grads"]
    assert report["nodes_removed"] > 0
    assert f"prune_grads: {report['nodes_removed']} backward nodes removed, {report['saved_bytes_avoided']} B of " \
           f"saved activations avoided" in d.legend()
    assert len(compute_ids(d)) <= count_ops(dce(pruned)) < len(compute_ids(full)) == count_ops(joint)


def test_fused_stage_draws_each_group_as_a_cluster_of_its_members(mlp):
    fused = fuse(dce(prune_grads(autodiff(mlp.graph))))
    groups = [n for n in fused.nodes if n.op == "fused"]
    d = Drawing(draw_graph(mlp, stage="fused"))
    clusters = {name: a for name, a in d.clusters.items() if name.startswith("cluster_fused")}
    assert sorted(a["label"] for a in clusters.values()) == sorted("fused: " + "+".join(n.meta["members"])
                                                                   for n in groups)
    for name, attrs in clusters.items():
        inside = [d.label(k) for k, a in d.nodes.items() if a["cluster"] == name]
        members = attrs["label"].removeprefix("fused: ").split("+")
        assert [label.split()[0] for label in inside if label.split()[0] in members] == members
    add_relu = next(name for name, a in clusters.items() if a["label"] == "fused: add+relu")
    ids = {d.label(k): k for k, a in d.nodes.items() if a["cluster"] == add_relu}
    assert any(s == ids["add"] and t == ids["relu"] for s, t, _ in d.edges)
    assert any(s == d.by_label("fc1.bias\n(8)") and t == ids["add"] for s, t, _ in d.edges)
    assert f"fuse: {len(groups)} groups from {sum(len(n.meta['members']) for n in groups)} ops" in d.legend()


def scoped_graph():
    """features.0 (conv-ish matmul + add), features.1 (relu), classifier (matmul), by meta['scope']."""
    g = Graph()
    x = g.add_input(TensorType((2, 4), float32), "x")
    w0 = g.add_input(TensorType((4, 4), float32), "features.0.weight", "param")
    w2 = g.add_input(TensorType((4, 3), float32), "classifier.weight", "param")
    h = g.add_node("matmul", [x, w0], meta={"scope": "features.0"}).out
    h = g.add_node("add", [h, x], meta={"scope": "features.0"}).out
    h = g.add_node("relu", [h], meta={"scope": "features.1"}).out
    h = g.add_node("neg", [h], meta={"scope": "features"}).out
    g.set_outputs([g.add_node("matmul", [h, w2], meta={"scope": "classifier"}).out])
    return g


def test_ops_cluster_by_module_path():
    d = Drawing(draw_graph(scoped_graph()))
    label = {name: a["label"] for name, a in d.clusters.items()}
    parent = {label[name]: label.get(a["parent"]) for name, a in d.clusters.items()}
    assert parent == {"features": None, "features.0": "features", "features.1": "features", "classifier": None}
    where = {d.label(k): label.get(a["cluster"]) for k, a in d.nodes.items() if k != "legend"}
    assert where["add"] == "features.0" and where["relu"] == "features.1" and where["neg"] == "features"
    assert where["features.0.weight\n(4, 4)"] == "features.0" and where["x\n(2, 4)"] is None


def test_collapse_depth_folds_deep_subtrees_into_boxes():
    full = Drawing(draw_graph(scoped_graph()))
    one = Drawing(draw_graph(scoped_graph(), collapse_depth=1))
    zero = Drawing(draw_graph(scoped_graph(), collapse_depth=0))
    assert len(zero.nodes) < len(one.nodes) < len(full.nodes)
    assert {"features.0\n(3 nodes)", "features.1\n(1 node)", "neg", "classifier.weight\n(4, 3)"} <= set(one.labels())
    assert not any(label.startswith("classifier\n") for label in one.labels())
    assert set(zero.labels()) == {"x\n(2, 4)", "features\n(5 nodes)", "classifier\n(2 nodes)", "output\n(2, 3)"}
    assert zero.named_edges() == sorted([("x\n(2, 4)", "features\n(5 nodes)", "float32[2,4]"),
                                         ("features\n(5 nodes)", "classifier\n(2 nodes)", "float32[2,4]"),
                                         ("classifier\n(2 nodes)", "output\n(2, 3)", "float32[2,3]")])
    assert zero.clusters == {}


def test_source_lines_cluster_a_traced_model_without_scopes(mlp):
    d = Drawing(draw_graph(mlp))
    labels = {a["label"] for a in d.clusters.values()}
    assert "forward()" in labels and sum(label.startswith("test_draw_graph.py:") for label in labels) == 2
    folded = Drawing(draw_graph(mlp, collapse_depth=0))
    n_ops = sum(n.op not in ("input", "output") for n in mlp.graph.nodes)
    assert "forward()\n(%d nodes)" % n_ops in folded.labels()


def test_compiled_model_graph_method_is_called_with_the_stage():
    class Compiled:
        def __init__(self):
            self.asked = []

        def graph(self, stage):
            self.asked.append(stage)
            return small_graph()

    model = Compiled()
    dot = draw_graph(model, stage="fused")
    assert model.asked == ["fused"] and "fused graph" in Drawing(dot).legend()[0]


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"draw_graph: stage must be one of .*got 'backward'"):
        draw_graph(small_graph(), stage="backward")
    with pytest.raises(ValueError, match=r"collapse_depth must be None or an int >= 0, got -1"):
        draw_graph(small_graph(), collapse_depth=-1)
    with pytest.raises(TypeError, match=r"expected an ir.Graph, a Traced .* got function; .*graphnet.trace"):
        draw_graph(lambda x: x)

    class Broken:
        def graph(self, stage):
            return "nope"

    with pytest.raises(TypeError, match=r"Broken.graph\(stage='traced'\) returned str, expected an ir.Graph"):
        draw_graph(Broken())


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz 'dot' is not installed")
@pytest.mark.parametrize("fmt, magic", [("pdf", b"%PDF"), ("svg", b"<svg"), ("png", b"\x89PNG")])
def test_files_are_written(tmp_path, mlp, fmt, magic):
    path = render(draw_graph(mlp, stage="fused"), tmp_path / f"mlp.{fmt}", format=fmt)
    data = open(path, "rb").read()
    assert path.endswith(f"mlp.{fmt}") and magic in data[:400]


def test_missing_dot_program_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"needs the Graphviz 'dot' program.*apt-get install graphviz"):
        render(draw_graph(small_graph()), tmp_path / "g.pdf")
    assert isinstance(draw_graph(small_graph()), graphviz.Digraph)
