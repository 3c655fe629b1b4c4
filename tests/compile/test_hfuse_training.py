"""Horizontally fused optimizer updates at run time: compiled training equals eager training (parameters and
optimizer state), the updates are one generated kernel called once by the driver, and an in-place update never
clobbers a tensor another member still reads."""
import copy

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim
from graphnet.codegen.kernel import HorizontalKernel
from graphnet.ir.dtype import float32
from graphnet.ir.graph import Graph
from graphnet.ir.interpreter import interpret
from graphnet.ir.types import TensorType
from graphnet.passes.pipeline import run_pipeline
from graphnet.runtime.program import Program

OPTIMIZERS = {
    "sgd_momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    "sgd_nesterov_wd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
}


def _mlp():
    """Odd sizes and a frozen bias (its grad stays None, so it has no update)."""
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


def _value(graph, shape, name, role="input"):
    return graph.add_input(TensorType(shape, float32), name, role=role)


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
