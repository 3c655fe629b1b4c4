"""Horizontally fused optimizer updates on CUDA: one kernel, one launch, grid-stride loops over each member in turn,
with results and optimizer state equal to the eager CUDA run's (tiny shapes: the simulator is slow)."""
import copy
import warnings

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim
from graphnet.codegen import cuda as cg
from graphnet.core.dtype import float32
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.ir.kernel import HorizontalKernel
from graphnet.passes.fuse import fuse
from graphnet.passes.hfuse import hfuse
from graphnet.runtime.cuda_program import CudaProgram

pytestmark = pytest.mark.cuda


def _host(t):
    return t.detach().cpu().numpy()


def test_a_horizontal_kernel_renders_one_cuda_function_with_a_loop_per_member():
    g = Graph()
    x, y = g.add_input(TensorType((3, 5), float32), "x"), g.add_input(TensorType((7,), float32), "y")
    g.set_outputs([g.call("exp", x), g.call("mul", y, y), g.call("neg", x)])
    (node,) = [n for n in hfuse(fuse(g)).nodes if n.op == "fused"]
    kernel = node.attrs["kernel"]
    source = cg.render(kernel, threads=32)
    assert isinstance(kernel, HorizontalKernel) and len(kernel.members) == 3
    assert source.count("def kernel(in0, in1, out0, out1, out2):") == 1 and source.count("@cuda.jit") == 1
    assert [line.strip() for line in source.splitlines() if "cuda.grid(1)" in line] == [
        f"for _i in range(cuda.grid(1), {n}, cuda.gridsize(1)):" for n in (15, 7, 15)]


@pytest.mark.parametrize("make_opt", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps)],
                         ids=["sgd_momentum", "adam"])
def test_compiled_training_step_launches_one_update_kernel_and_matches_eager(make_opt):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).cuda()
    twin = copy.deepcopy(model)
    opt, opt2 = make_opt(list(model.parameters())), make_opt(list(twin.parameters()))
    x, y = torch.randn(2, 3).cuda(), torch.randint(0, 2, (2,)).cuda()

    def step(m, o, x, y):  # x and y as arguments: captured CUDA tensors become CPU-typed constants
        o.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        return loss

    cstep = torch.compile(lambda x, y: step(model, opt, x, y))
    for _ in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a fallback to eager warns
            got = cstep(x, y)
        np.testing.assert_allclose(_host(got), _host(step(twin, opt2, x, y)), rtol=1e-5, atol=1e-6)
    (prog,) = cstep._last.programs
    assert isinstance(prog, CudaProgram) and prog.inplace_writebacks
    (merged,) = [n for n in prog.graph.nodes if n.op == "fused" and isinstance(n.attrs["kernel"], HorizontalKernel)]
    assert len(merged.attrs["kernel"].members) >= 4  # one per parameter (and the loss's last division)
    source = cstep.kernels()[f"step.{merged.outputs[0].name}"]
    assert source.count("@cuda.jit") == 1 and source.count("cuda.grid(1)") == len(merged.attrs["kernel"].members)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(_host(p), _host(q), rtol=1e-5, atol=1e-6)
        for a, b in zip(opt.state[p].values(), opt2.state[q].values()):
            np.testing.assert_allclose(_host(a), _host(b), rtol=1e-5, atol=1e-6)
