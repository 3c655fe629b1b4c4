"""The generated driver: a compiled Program runs as one njit call when every step lowers, from Python otherwise,
with the same results either way."""
import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim
from examples.lenet import LeNet


def _program(compiled):
    (prog,) = compiled._last.programs
    return prog


def _rerun_from_python(prog, inputs):
    """The same Program's outputs when its steps run one by one from Python."""
    parts, prog.parts = prog.parts, prog.steps
    try:
        return prog.run(inputs)[0]
    finally:
        prog.parts = parts


def test_a_lenet_training_step_is_one_driver_call_and_matches_eager():
    """Batch 16 is big enough for the conv/pool steps of a forward-only Program to split over two threads; a
    training step (it writes back parameters) never splits, so it stays one driver call."""
    torch.manual_seed(0)
    model, x, y = LeNet(), torch.randn(16, 1, 32, 32), torch.randint(0, 10, (16,))
    twin = LeNet()
    twin.load_state_dict(model.state_dict())
    opts = [optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (model, twin)]

    def step(m, opt):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss

    cstep = torch.compile(lambda: step(model, opts[0]))
    for _ in range(4):
        got, want = cstep(), step(twin, opts[1])
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-4)
    assert _program(cstep).driver is not None
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert "def program(" in cstep.kernels()["step.driver0"]


def test_lenet_inference_splits_its_conv_and_pool_steps_over_two_threads_and_matches_eager():
    from graphnet.runtime import library

    torch.manual_seed(2)
    model, x = LeNet().eval(), torch.randn(16, 1, 32, 32)
    cm = torch.compile(model)
    with torch.no_grad():
        for _ in range(2):
            got = cm(x)
        np.testing.assert_allclose(got.numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)
    split = {s.fn.__name__ for s in _program(cm).steps if isinstance(s, library.Template) and s.split}
    if library.THREADS >= 2:
        assert "conv2d_forward" in split and _program(cm).driver is None
    else:
        assert not split and _program(cm).driver is not None


def test_basic_indexing_views_lower_into_the_driver():
    def f(x):
        return (x[1:, ::2] * 2).sum(0) + x[0, 1:3].sum() + x[..., -1][1:] + x[-1, None, 2:].sum()

    cf = torch.compile(f)
    x = torch.randn(4, 5)
    for _ in range(2):
        got = cf(x)
    np.testing.assert_allclose(got.numpy(), f(x).numpy(), rtol=1e-5, atol=1e-6)
    prog = _program(cf)
    assert prog.driver is not None
    np.testing.assert_allclose(_rerun_from_python(prog, [x.numpy()])[0], got.numpy(), rtol=1e-6)


def test_a_step_without_an_njit_form_runs_the_program_from_python():
    idx = torch.tensor([3, 0, 3])

    def f(x):
        return torch.sigmoid(x[idx]) * 2  # advanced indexing runs its NumPy impl

    cf = torch.compile(f)
    x = torch.randn(5, 3)
    for _ in range(2):
        got = cf(x)
    np.testing.assert_allclose(got.numpy(), f(x).numpy(), rtol=1e-6)
    assert _program(cf).driver is None
    assert not [name for name in cf.kernels() if ".driver" in name]


def _layers_around_a_sort(ws, after):
    def f(x):
        for w in ws[:10]:
            x = torch.tanh(x @ w)
        x = torch.sort(x, dim=1).values  # no njit form: runs its NumPy impl between two drivers
        for w in ws[10:10 + after]:
            x = torch.tanh(x @ w)
        return (x ** 2).sum()
    return f


def test_a_host_step_splits_the_program_into_drivers_around_it_with_eager_values_and_gradients():
    """10 layers before the sort and 10 after: the forward before it, the forward and backward after it and the
    backward before it are three drivers, the sort and its adjoint host steps between them; with 2 layers after it,
    their 12 steps (under MIN_SEGMENT_STEPS) stay in Python. Values and weight gradients equal eager either way."""
    from graphnet.runtime.program import _Driver

    torch.manual_seed(0)
    ws = [(torch.randn(6, 6) * 0.4).requires_grad_() for _ in range(20)]
    x = torch.randn(4, 6)
    for after, drivers in ((10, 3), (2, 2)):
        f = _layers_around_a_sort(ws, after)

        def step(x, f=f):
            for w in ws:
                w.grad = None
            loss = f(x)
            loss.backward()
            return loss

        cf = torch.compile(step)
        for _ in range(3):
            got = cf(x)
            grads = [w.grad.numpy().copy() for w in ws[:10 + after]]
        want = step(x)
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
        for g, w in zip(grads, ws):
            np.testing.assert_allclose(g, w.grad.numpy(), rtol=1e-4, atol=1e-6)
        parts = _program(cf).parts
        assert sum(isinstance(p, _Driver) for p in parts) == len(_program(cf).driver_sources) == drivers, parts
        assert len(parts) > drivers and _program(cf).driver is None


def test_driver_and_python_runs_agree_on_a_module_forward():
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 3 * 3, 5), nn.LogSoftmax(1)).eval()
    cm = torch.compile(model)
    x = torch.randn(3, 2, 6, 6)
    with torch.no_grad():
        got = cm(x)
        np.testing.assert_allclose(got.numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    prog = _program(cm)
    assert prog.driver is not None
    feeds = [np.ascontiguousarray(t._data) for t in cm._feeds(cm._last, (x,))]
    np.testing.assert_allclose(_rerun_from_python(prog, feeds)[0], got.numpy(), rtol=1e-6)


def test_linear_bias_and_relu_run_as_the_gemm_epilogue_in_the_driver_and_from_python():
    from graphnet.runtime import library, steps

    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    cm = torch.compile(model)
    x = torch.randn(4, 6)
    with torch.no_grad():
        got = cm(x)
        np.testing.assert_allclose(got.numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    prog = _program(cm)
    matmuls = [s for s in prog.steps if isinstance(s, library.Matmul)]
    assert [m.attrs["epilogue"] for m in matmuls] == [(True, True), (True, False)]
    assert sum(isinstance(s, steps.Alias) for s in prog.steps) == 2 and prog.driver is not None
    assert "gemm.gemm, addresses[" in cm.kernels()["forward.driver0"]
    feeds = [np.ascontiguousarray(t._data) for t in cm._feeds(cm._last, (x,))]
    np.testing.assert_allclose(_rerun_from_python(prog, feeds)[0], got.numpy(), rtol=1e-6)


@pytest.mark.parametrize("python_loop", [True, False])
def test_nd_matmuls_and_slice_adjoints_match_eager_from_python_and_in_the_driver(python_loop, monkeypatch):
    """An N-d operand times a 2-d one (a Linear on (B, T, C), its input gradient) runs as one GEMM over the B*T rows
    from Python as in the driver; a strided one (a transposed view) falls back to np.matmul from Python and a copy
    in the driver; the slice's adjoint fills its planned buffer (SliceAdjoint), the split's three are one cat
    (simplify) written piece by piece into its buffer (Cat). Values and gradients as eager."""
    from graphnet.runtime import library, program, steps

    if python_loop:
        monkeypatch.setattr(program, "MAX_DRIVER_STEPS", 0)
    torch.manual_seed(3)
    lin = nn.Linear(6, 9)
    x, w = torch.randn(3, 5, 6, requires_grad=True), torch.randn(4, 7, requires_grad=True)
    leaves = [x, w, lin.weight, lin.bias]

    def step():
        q, k, v = lin(x).split(3, dim=2)
        t = x[:, :, 1:5] @ w  # (3, 5, 4) @ (4, 7), the left operand strided
        loss = (q * k).sum() + v.tanh().sum() + (t * t).sum()
        loss.backward()
        return loss

    want = step().item()
    want_grads = [p.grad.numpy().copy() for p in leaves]
    cstep = torch.compile(step)
    for _ in range(2):
        for p in leaves:
            p.grad = None
        got = cstep().item()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for p, g in zip(leaves, want_grads):
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-4, atol=1e-5)
    prog = _program(cstep)
    assert (prog.driver is None) == python_loop
    rows = [s for s in prog.steps if isinstance(s, library.Matmul) and s.rows is not None]
    assert {s.shapes[0] for s in rows} == {(3, 5, 6), (3, 5, 9), (3, 5, 4), (3, 5, 7)}  # Linears, their dx
    assert sum(isinstance(s, steps.SliceAdjoint) for s in prog.steps) == 1
    assert sum(isinstance(s, steps.Cat) for s in prog.steps) == 1
