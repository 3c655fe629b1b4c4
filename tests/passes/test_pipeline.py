"""pipeline: the default passes keep a traced MLP training step's results (outputs and parameter updates), verify
after every pass, report per pass, print the graph after each pass on request, and keep random graphs' semantics."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphnet as torch
from graphnet.core.dtype import float64
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.ir.interpreter import interpret
from graphnet.ir.verify import VerifyError
from graphnet.passes import autodiff
from graphnet.passes.pipeline import DEFAULT_PASSES, format_bytes, format_report, run_pipeline

RNG = np.random.default_rng(4)
NAMES = [p.name for p in DEFAULT_PASSES]


def _params():
    shapes = ((5, 8), (8,), (8, 3), (3,))
    return [torch.tensor(RNG.standard_normal(s).astype(np.float32) * 0.5, requires_grad=True) for s in shapes]


def _loss(x, y, w1, b1, w2, b2):
    """A two-layer MLP with a log-sum-exp cross-entropy-like loss against one-hot targets `y`."""
    logits = (x @ w1 + b1).relu() @ w2 + b2
    top = logits.amax(1, keepdim=True)
    lse = (logits - top).exp().sum(1, keepdim=True).log() + top
    return ((lse - logits) * y).sum(1).mean()


def _training_step(params, lr=0.1):
    def step(x, y):
        loss = _loss(x, y, *params)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad * lr)
                p.grad = None
        return loss

    return step


def _batch():
    x = torch.tensor(RNG.standard_normal((6, 5)).astype(np.float32))
    y = torch.tensor(np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 6)])
    return x, y


def _feeds(graph):
    return [RNG.standard_normal(v.shape).astype(v.dtype.np) for v in graph.inputs]


def _assert_same(before, after, feeds, rtol=1e-5):
    want, got = interpret(before, feeds, with_writebacks=True), interpret(after, feeds, with_writebacks=True)
    assert len(want[0]) == len(got[0]) and len(want[1]) == len(got[1])
    for w, o in zip(want[0] + want[1], got[0] + got[1]):
        np.testing.assert_allclose(o, w, rtol=rtol, atol=1e-6)


def test_traced_mlp_training_step_keeps_loss_and_updates():
    params = _params()
    x, y = _batch()
    graph = torch.trace(_training_step(params), x, y).graph
    assert [w.kind for w in graph.writebacks] == ["data"] * 4
    optimized, report = run_pipeline(graph, verify=True)
    feeds = {"x": x.numpy(), "y": y.numpy(), **{v.name: p.detach().numpy() for v, p in
                                               zip(graph.inputs_by_role("param"), params)}}
    _assert_same(graph, optimized, feeds)
    assert [e["name"] for e in report] == NAMES
    assert all(a["nodes_after"] == b["nodes_before"] for a, b in zip(report, report[1:]))
    by_name = {e["name"]: e for e in report}
    assert by_name["prune_grads"]["skipped"] == "not a joint graph"
    assert by_name["cse"]["report"]["merged"] > 0 and by_name["fuse"]["report"]["groups"] > 0
    assert report[-1]["nodes_after"] < report[0]["nodes_before"]
    assert all(e["seconds"] >= 0 for e in report)


def test_joint_graph_is_pruned_then_optimized():
    params = _params()
    x, y = _batch()
    forward = torch.trace(lambda x, y: _loss(x, y, *params), x, y).graph
    joint = autodiff(forward, wrt=["x"] + [v.name for v in forward.inputs_by_role("param")])
    optimized, report = run_pipeline(joint)
    assert report[0]["name"] == "prune_grads" and report[0]["skipped"] is None
    assert "x" not in optimized.meta["autodiff"]["grads"]  # x does not require grad: its gradient is pruned
    feeds = _feeds(joint)
    want = interpret(joint, feeds)
    got = interpret(optimized, feeds)
    grads = joint.meta["autodiff"]["grads"]
    for name, index in optimized.meta["autodiff"]["grads"].items():
        np.testing.assert_allclose(got[index], want[grads[name]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)


def _graph_with_work():
    g = Graph()
    x = g.add_input(TensorType((3, 4), float64), "x")
    one = g.add_constant(np.float64(1.0))
    g.set_outputs([g.call("tanh", g.call("mul", g.call("exp", x), g.call("add", one, one)))])
    return g


def test_debug_printing_shows_the_graph_after_each_pass(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHNET_DEBUG_PASSES", "1")
    run_pipeline(_graph_with_work(), passes=["cse", "fold"])
    err = capsys.readouterr().err
    assert "=== after cse:" in err and "=== after fold:" in err
    assert err.index("=== after cse") < err.index("=== after fold")
    assert "graph(%x: float64[3, 4] input)" in err and "= exp(%x)" in err
    monkeypatch.setenv("GRAPHNET_DEBUG_PASSES", "0")
    run_pipeline(_graph_with_work(), passes=["cse"])
    assert capsys.readouterr().err == ""


def _break_types(graph):
    g = graph.copy()
    node = next(n for n in g.nodes if n.op == "exp")
    node.outputs[0].type = TensorType((4, 3), float64)
    return g


def test_verification_names_the_pass_that_broke_the_graph(monkeypatch):
    with pytest.raises(VerifyError, match=r"run_pipeline: pass '_break_types' is malformed: verify: exp: recorded"):
        run_pipeline(_graph_with_work(), passes=["cse", _break_types])
    run_pipeline(_graph_with_work(), passes=[_break_types], verify=False)
    monkeypatch.setenv("GRAPHNET_VERIFY", "0")
    run_pipeline(_graph_with_work(), passes=[_break_types])
    monkeypatch.setenv("GRAPHNET_VERIFY", "1")
    with pytest.raises(VerifyError, match="the input graph is malformed"):
        run_pipeline(_break_types(_graph_with_work()), passes=[])


def test_bad_pass_arguments_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown pass 'csee'; known passes: \['cse', 'dce'"):
        run_pipeline(_graph_with_work(), passes=["csee"])
    with pytest.raises(TypeError, match="a pass must be a name, a Pass or a function Graph -> Graph, got 3"):
        run_pipeline(_graph_with_work(), passes=[3])


def test_format_report_is_a_table_of_every_pass():
    _, report = run_pipeline(_graph_with_work())
    text = format_report(report)
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["pass", "nodes", "before", "after", "ms"]
    assert set(lines[1]) == {"-"}
    rows = {line.split()[0]: line for line in lines[2:]}
    assert list(rows) == list(dict.fromkeys(NAMES)) + ["total"]
    assert "skipped: not a joint graph" in rows["prune_grads"]
    assert "folded=1" in rows["fold"] and "groups=1" in rows["fuse"]
    assert rows["total"].split()[1:3] == [str(report[0]["nodes_before"]), str(report[-1]["nodes_after"])]
    if "plan_memory" in rows and report[-1]["skipped"] is None:
        assert "peak_bytes_after=" in rows["plan_memory"]
    assert format_report([]).splitlines()[0].startswith("pass")


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 << 20, "3.0 MiB"),
                                     (5 << 40, "5120.0 GiB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text


# ---- random graphs through the whole pipeline ---------------------------------------------------------------------
SHAPE = (2, 3)
UNARY = ["neg", "tanh", "sin", "relu", "abs"]
BINARY = ["add", "sub", "mul", "maximum"]
ROUND_TRIPS = [("permute", {"dims": (1, 0)}, {"dims": (1, 0)}), ("reshape", {"shape": (6,)}, {"shape": SHAPE}),
               ("reshape", {"shape": (3, 2)}, {"shape": SHAPE}), ("neg", {}, {})]


@st.composite
def _operand(draw, g, vals):
    """An existing value, or a constant: 0-d, (1, 1), a broadcast of one, or a full random array."""
    kind = draw(st.sampled_from(["value", "value", "scalar", "small", "expand", "full"]))
    number = np.float64(draw(st.sampled_from([0.0, 1.0, -0.5, 2.0])))
    if kind == "value":
        return draw(st.sampled_from(vals))
    if kind == "scalar":
        return g.add_constant(number)
    if kind == "small":
        return g.add_constant(np.full((1, 1), number))
    if kind == "expand":
        return g.call("expand", g.add_constant(number), shape=SHAPE)
    return g.add_constant(RNG.standard_normal(SHAPE))


def _step(draw, g, vals):
    """One random node: mostly on the latest values, with constants as operands (to fold and simplify)."""
    kind = draw(st.sampled_from(["unary", "binary", "binary", "binary", "round_trip", "reduce", "dup", "cast"]))
    a = draw(st.sampled_from(vals[-3:]))
    if kind == "unary":
        return g.call(draw(st.sampled_from(UNARY)), draw(_operand(g, [a])))
    if kind == "binary":
        b = draw(_operand(g, vals))
        return g.call(draw(st.sampled_from(BINARY)), *((a, b) if draw(st.booleans()) else (b, a)))
    if kind == "round_trip":
        op, there, back = draw(st.sampled_from(ROUND_TRIPS))
        return g.call(op, g.call(op, a, **there), **back)
    if kind == "reduce":
        return g.call("expand", g.call("sum", a, dims=(1,), keepdim=True), shape=SHAPE)
    if kind == "cast":
        return g.call("cast", a, dtype=float64)
    node = draw(st.sampled_from([v.producer for v in vals if v.producer.op not in ("input", "constant")] or [None]))
    return a if node is None else g.call("add", a, g.call(node.op, *node.inputs, **node.attrs))


@st.composite
def random_graphs(draw):
    """Graphs of float64 values of one shape (constants broadcast into it); the last value is always an output."""
    g = Graph()
    vals = [g.add_input(TensorType(SHAPE, float64), "x"), g.add_input(TensorType(SHAPE, float64), "y")]
    for _ in range(draw(st.integers(1, 10))):
        v = _step(draw, g, vals)
        vals.append(v if v.shape == SHAPE else g.call("expand", v, shape=SHAPE))
    others = draw(st.lists(st.sampled_from(vals), max_size=2, unique=True))
    g.set_outputs(list(dict.fromkeys([vals[-1]] + others)))
    return g


@settings(max_examples=60, deadline=None)
@given(random_graphs())
def test_random_graphs_keep_semantics_through_the_pipeline(graph):
    optimized, _ = run_pipeline(graph, verify=True)
    _assert_same(graph, optimized, _feeds(graph), rtol=1e-12)
