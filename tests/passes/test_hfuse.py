"""hfuse: the per-parameter optimizer updates of a traced training step become one fused node; nodes that feed other
compute, reductions and GEMM epilogues stay alone; the interpreted semantics never change. At run time compiled
training equals eager training (parameters and optimizer state), the updates are one generated kernel called once
by the driver, and an in-place update never clobbers a tensor another member still reads."""
import copy

import numpy as np
import pytest
from passcheck import run_checked

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim
from graphnet.core.dtype import float32
from graphnet.core.types import TensorType
from graphnet.frontend.tracer import trace
from graphnet.ir.graph import Graph
from graphnet.ir.interpreter import interpret
from graphnet.ir.kernel import HorizontalKernel
from graphnet.passes.fuse import fuse
from graphnet.passes.hfuse import hfuse
from graphnet.passes.pipeline import DEFAULT_PASSES, run_pipeline
from graphnet.runtime.program import Program

RNG = np.random.default_rng(0)
UNTIL_FUSE = DEFAULT_PASSES[:[p.name for p in DEFAULT_PASSES].index("fuse") + 1]
OPTIMIZERS = {
    "sgd_momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    "sgd_nesterov_wd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
}


def _mlp():
    """Odd sizes and a frozen bias (it gets no gradient, hence no update)."""
    model = nn.Sequential(nn.Linear(7, 13), nn.Tanh(), nn.Linear(13, 3))
    model[0].bias.requires_grad = False
    return model, torch.randn(5, 7), torch.randint(0, 3, (5,))


def _convnet():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))
    return model, torch.randn(2, 1, 6, 6), torch.randint(0, 4, (2,))


def _step(model, opt, x, y):
    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _fused_step_graph(make_model, make_opt):
    """The training step traced after one eager call (so optimizer state exists), optimized up to `fuse`."""
    torch.manual_seed(0)
    model, x, y = make_model()
    opt = make_opt([p for p in model.parameters() if p.requires_grad])
    step = _step(model, opt, x, y)
    step()
    graph, _ = run_pipeline(trace(step).graph, UNTIL_FUSE, verify=True)
    return graph, sum(p.requires_grad for p in model.parameters())


def _fused(graph):
    return [n for n in graph.nodes if n.op == "fused"]


@pytest.mark.parametrize("make_model", [_mlp, _convnet], ids=["mlp", "convnet"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_the_updates_of_every_trained_parameter_become_one_node(make_model, opt):
    graph, trained = _fused_step_graph(make_model, OPTIMIZERS[opt])
    out = run_checked(hfuse, graph, RNG)
    report = out.meta["hfuse"]
    assert report["groups"] == 1 and report["merged"] >= trained
    assert len(_fused(out)) == len(_fused(graph)) - report["merged"] + 1
    params = [wb for wb in out.writebacks if wb.kind == "data" and wb.target.role == "param"]
    assert len(params) == trained
    (merged,) = {wb.value.producer for wb in params}
    assert isinstance(merged.attrs["kernel"], HorizontalKernel)
    assert len(merged.attrs["kernel"].members) == report["merged"]
    # the momentum / moment buffers land there too; only Adam's step counters (read by its bias corrections) do not
    states = [wb for wb in out.writebacks if wb.kind == "data" and wb.target.role == "state" and wb.target.shape]
    assert states and all(wb.value.producer is merged for wb in states)


def _value(graph, shape, name, role="input"):
    return graph.add_input(TensorType(shape, float32), name, role=role)


def test_nodes_feeding_other_compute_reductions_and_epilogues_stay_alone():
    g = Graph()
    x, w, b, y = _value(g, (4, 3), "x"), _value(g, (3, 5), "w"), _value(g, (5,), "b"), _value(g, (6,), "y")
    a = g.call("exp", x)                   # read by the matmul: feeds other compute
    m = g.call("matmul", a, w)
    dep = g.call("mul", g.call("add", m, b), m)   # depends on `a` through the matmul; `m` has two readers
    red = g.call("sum", g.call("mul", y, y), dims=None, keepdim=False)  # a reduction
    ep = g.call("relu", g.call("add", g.call("matmul", x, w), b))  # an epilogue its GEMM may absorb
    sink = g.call("neg", y)
    g.set_outputs([a, m, dep, red, ep, sink])
    fused = fuse(g)
    out = run_checked(hfuse, fused, RNG)
    assert out.meta["hfuse"] == {"groups": 1, "merged": 2}
    (merged,) = [n for n in _fused(out) if isinstance(n.attrs["kernel"], HorizontalKernel)]
    assert merged.meta["horizontal"] == [["add", "mul"], ["neg"]]
    kept = {n.meta["members"][0] for n in _fused(out) if n is not merged}
    assert kept == {"exp", "mul", "add"}  # the exp, the reduction (its prologue mul) and the epilogue (add + relu)


def test_a_dependent_pair_is_never_merged():
    g = Graph()
    x, w = _value(g, (4, 4), "x"), _value(g, (4, 4), "w")
    first = g.call("sigmoid", x)
    second = g.call("tanh", g.call("matmul", first, w))
    g.set_outputs([first, second, g.call("matmul", first, w)])
    out = run_checked(hfuse, fuse(g), RNG)
    assert out.meta["hfuse"] == {"groups": 0, "merged": 0}


def test_the_merged_node_sits_where_its_last_member_was_after_readers_of_the_old_values():
    g = Graph()
    p, grad, w = _value(g, (3, 4), "p", "param"), _value(g, (3, 4), "g"), _value(g, (4, 2), "w")
    new_p = g.call("sub", p, g.call("mul", grad, g.call("exp", grad)))  # p's update, written back
    late = g.call("matmul", p, w)       # reads the old p after the update was computed
    other = g.call("mul", late, late)   # a second sink
    g.set_outputs([late, other], writebacks=[(new_p, p, "data")])
    out = run_checked(hfuse, fuse(g), RNG)
    order = [n.op for n in out.nodes if n.op not in ("input", "constant", "output")]
    assert order == ["matmul", "fused"]


def test_a_graph_without_candidates_is_returned_unchanged_in_structure():
    g = Graph()
    x = _value(g, (3,), "x")
    g.set_outputs([g.call("exp", x)])
    before = fuse(g)
    out = run_checked(hfuse, before, RNG)
    assert out.meta["hfuse"] == {"groups": 0, "merged": 0} and len(out) == len(before)


def _state_arrays(opt):
    return [v.numpy() for p in opt.param_groups[0]["params"] for v in opt.state[p].values()
            if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("make_model,opt", [(_mlp, name) for name in sorted(OPTIMIZERS)] + [(_convnet, "adam")],
                         ids=[f"mlp-{name}" for name in sorted(OPTIMIZERS)] + ["convnet-adam"])
def test_compiled_training_with_one_update_kernel_matches_eager(make_model, opt):
    torch.manual_seed(0)
    model, x, y = make_model()
    twin = copy.deepcopy(model)
    opts = [OPTIMIZERS[opt]([p for p in m.parameters() if p.requires_grad]) for m in (model, twin)]
    cstep, eager = torch.compile(_step(model, opts[0], x, y)), _step(twin, opts[1], x, y)
    for _ in range(4):
        np.testing.assert_allclose(cstep().item(), eager().item(), rtol=1e-5)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
        assert (p.grad is None) == (q.grad is None)
    for got, want in zip(_state_arrays(opts[0]), _state_arrays(opts[1]), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    _assert_one_update_kernel(cstep)


def _assert_one_update_kernel(cstep):
    (prog,) = cstep._last.programs
    assert prog.driver is not None and prog.parts == [prog.driver]  # the whole step is still one driver call
    merged = [n for n in prog.graph.nodes if n.op == "fused" and isinstance(n.attrs["kernel"], HorizontalKernel)]
    assert len(merged) == 1
    source = cstep.kernels()[f"step.{merged[0].outputs[0].name}"]
    assert source.count("def ") == 1 and source.count("@njit(") == 1
    loops = sum(1 for m in merged[0].attrs["kernel"].members if m.domain)
    assert source.count("for i0 in range(") == loops
    driver = cstep.kernels()["step.driver0"]
    assert sum(line.lstrip().startswith("call_compiled(") and ", k" in line for line in driver.splitlines()) >= 1


def _run_program(graph, inputs):
    optimized, _ = run_pipeline(graph, verify=True)
    prog = Program(optimized)
    outs, wbs = prog.run([a.copy() for a in inputs])
    return optimized, outs, wbs


def test_an_update_never_overwrites_in_place_a_tensor_another_member_reads():
    """The update of p (written back) and p + 1 (returned) merge; p + 1 runs after the update, so p stays."""
    g = Graph()
    p, grad = _value(g, (3, 5), "p", "param"), _value(g, (3, 5), "g")
    new_p = g.call("sub", p, g.call("mul", grad, g.call("exp", grad)))
    g.set_outputs([g.call("add", p, g.call("exp", p))], writebacks=[(new_p, p, "data")])
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((3, 5)).astype(np.float32) for _ in range(2)]
    optimized, outs, wbs = _run_program(g, inputs)
    want_outs, want_wbs = interpret(g, inputs, with_writebacks=True)
    np.testing.assert_allclose(outs[0], want_outs[0], rtol=1e-6)
    np.testing.assert_allclose(wbs[0], want_wbs[0], rtol=1e-6)
    (merged,) = [n for n in optimized.nodes if n.op == "fused"]
    assert isinstance(merged.attrs["kernel"], HorizontalKernel)
    assert "p" not in merged.meta.get("inplace", {}).values()


def test_updates_write_their_parameters_in_place_after_readers_of_the_old_values():
    g = Graph()
    p, q = _value(g, (4, 3), "p", "param"), _value(g, (3,), "q", "param")
    gp, gq, w = _value(g, (4, 3), "gp"), _value(g, (3,), "gq"), _value(g, (3, 2), "w")
    new_p = g.call("sub", p, g.call("mul", gp, g.call("exp", gp)))
    old = g.call("matmul", p, w)  # reads the old p after its update was computed
    new_q = g.call("sub", q, g.call("tanh", gq))
    g.set_outputs([old], writebacks=[(new_p, p, "data"), (new_q, q, "data")])
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal(v.type.shape).astype(np.float32) for v in g.inputs]
    optimized, outs, wbs = _run_program(g, inputs)
    (merged,) = [n for n in optimized.nodes if n.op == "fused"]
    assert sorted(merged.meta["inplace"].values()) == ["p", "q"]
    want_outs, want_wbs = interpret(g, inputs, with_writebacks=True)
    for got, want in zip(outs + wbs, want_outs + want_wbs):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
