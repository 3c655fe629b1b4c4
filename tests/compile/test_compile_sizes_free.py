"""Kernels whose sizes cost nothing as parameters (codegen/cpu.py sizes_free) are shared across sizes in a fixed-size
Program: an optimizer's per-parameter updates compile once for every parameter size, with values as eager."""
import numpy as np

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim
from graphnet.codegen import cpu
from graphnet.ir.kernel import Access, LoopKernel, Stmt


def _kernel(domain, strides):
    """tanh of one read with `strides` over `domain`."""
    return LoopKernel(name="k", domain=domain, inputs=["in0"], outputs=["out0"],
                      dtypes={"in0": "float32", "out0": "float32"}, reads=[Access("in0", strides, 0)],
                      body=[Stmt("v0", "load", (0,)), Stmt("v1", "tanh", ("v0",))], results=["v1"])


def test_one_contiguous_elementwise_loop_takes_its_size_as_a_parameter():
    assert cpu.sizes_free(_kernel((4, 5), (5, 1)))  # collapses to one loop of 20
    assert cpu.sizes_free(_kernel((4, 5), (0, 0)))  # a broadcast scalar
    assert not cpu.sizes_free(_kernel((4, 5), (0, 1)))  # a broadcast row: two loops
    assert not cpu.sizes_free(_kernel((4, 5), (1, 4)))  # a transpose
    (src4, ext4), (src9, ext9) = cpu.render_sized(_kernel((4,), (1,))), cpu.render_sized(_kernel((9,), (1,)))
    assert src4 == src9 and (ext4, ext9) == ([4], [9])
    src, ext = cpu.render_sized(_kernel((4, 5), (0, 1)))
    assert ext == [] and "range(5)" in src  # not sizes-free: literal sizes, as before
    x = np.linspace(-2, 2, 9, dtype=np.float32)
    out = np.empty(9, np.float32)
    cpu.load(src9)(x, out, *ext9)
    np.testing.assert_allclose(out, np.tanh(x), rtol=1e-6)


def _mlp_step(widths, seed=0):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x, y = torch.randn(8, widths[0]), torch.randint(0, widths[-1], (8,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return model, step


def test_sgd_updates_of_every_parameter_size_share_their_kernels():
    (eager_model, eager), (model, step) = _mlp_step((6, 10, 7, 3)), _mlp_step((6, 10, 7, 3))
    compiled = torch.compile(step)
    for _ in range(4):
        np.testing.assert_allclose(compiled().item(), eager().item(), rtol=1e-5)
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    other = torch.compile(_mlp_step((5, 9, 11, 4))[1])  # the same model at other sizes: every size differs
    for _ in range(2):
        other()
    mine, theirs = (set(c._last.programs[0].kernel_sources()) for c in (compiled, other))
    updates = {s for s in mine if "range(n0)" in s}
    assert len(updates) >= 2  # the weight and bias updates, each kind one kernel for all sizes
    assert updates <= theirs
