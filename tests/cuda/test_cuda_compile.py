"""graphnet.compile on CUDA tensors: a compiled CudaProgram whose results, gradients and in-place state updates
equal the eager CUDA run's; inputs on two devices fall back to eager with one clear warning."""
import copy
import warnings

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim
from graphnet.runtime.cuda_program import CudaProgram

pytestmark = pytest.mark.cuda


class TinyLeNet(nn.Module):
    """conv 1->2 3x3, relu, pool, conv 2->3 2x2, relu, pool, fc 3->4 on 1x8x8 inputs (the simulator is slow)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 3, 2), nn.Linear(3, 4)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.reshape(x.shape[0], -1))


def _host(t):
    return t.detach().cpu().numpy()


def _close(got, want, rtol=1e-5, atol=1e-6):
    assert got.is_cuda
    np.testing.assert_allclose(_host(got), _host(want), rtol=rtol, atol=atol)


def _no_fallback(fn, *args):
    """Call a compiled object, failing on any warning (a fallback to eager warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args)


def _programs(compiled):
    progs = compiled._last.programs
    assert progs and all(isinstance(p, CudaProgram) for p in progs)
    return progs


def test_elementwise_chain_with_broadcasting_and_odd_sizes():
    def f(x, b, s):
        y = (x * 1.5 + b).sigmoid() - s.exp()
        return y, (x.permute(2, 1, 0) - 1).relu() * b

    x, b, s = torch.randn(3, 7, 5), torch.randn(7, 1), torch.randn(5)
    args = [a.cuda() for a in (x, b, s)]
    cf = torch.compile(f)
    cf(*args)  # the first call of a guard set runs eagerly
    got = _no_fallback(cf, *args)
    _programs(cf)
    assert cf.stats()["fused_groups"] >= 2
    want = f(x, b, s)
    for g, w in zip(got, want):
        assert g.is_cuda and tuple(g.shape) == tuple(w.shape)
        np.testing.assert_allclose(_host(g), w.numpy(), rtol=1e-5, atol=1e-6)
    assert "cuda.jit" in next(iter(cf.kernels().values()))


def test_reductions_sum_mean_amax():
    def f(x):
        return (x * x).sum(1), x.mean((0, 2), keepdim=True), x.amax(-1), x.sum()

    x = torch.randn(3, 37, 5)
    cf = torch.compile(f)
    cf(x.cuda())
    got = _no_fallback(cf, x.cuda())
    _programs(cf)
    for g, w in zip(got, f(x)):
        np.testing.assert_allclose(_host(g), w.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [600, 1001])
def test_long_reductions_into_few_outputs_run_as_two_passes(n):
    from graphnet.runtime import cuda_program

    def f(x):
        return (x * 2).sum(), x.amax(0), torch.sqrt((x * x).mean(0))  # the mean's division runs in the second pass

    x = torch.randn(n, 1)
    cf = torch.compile(f)
    cf(x.cuda())
    got = _no_fallback(cf, x.cuda())
    (prog,) = _programs(cf)
    kernels = [n.attrs["kernel"] for n in prog.graph.nodes if n.op == "fused"]
    parts = [s.parts for s in prog.steps if isinstance(s, cuda_program._Fused)]
    assert [p for p, k in zip(parts, kernels) if k.is_reduction] == [2, 2, 2] and any(k.post for k in kernels)
    for g, w in zip(got, f(x)):
        np.testing.assert_allclose(_host(g), w.numpy(), rtol=1e-5, atol=1e-5)


def test_mlp_train_step_with_sgd_momentum_matches_eager():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 3)).cuda()
    twin = copy.deepcopy(model)
    opt, opt2 = (optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (model, twin))
    x, y = torch.randn(7, 6).cuda(), torch.randint(0, 3, (7,)).cuda()

    def train_step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    step = torch.compile(train_step)
    storages = [id(p._data) for p in model.parameters()]
    for i in range(3):
        got = step(x, y) if i == 0 else _no_fallback(step, x, y)
        opt2.zero_grad()
        want = F.cross_entropy(twin(x), y)
        want.backward()
        opt2.step()
        _close(got, want)
    assert step.stats()["programs"] == 1
    assert _programs(step)[0].inplace_writebacks  # the updates landed in the live parameters' device memory
    assert [id(p._data) for p in model.parameters()] == storages
    for p, q in zip(model.parameters(), twin.parameters()):
        _close(p, q)
        _close(p.grad, q.grad, rtol=1e-4)
        _close(opt.state[p]["momentum_buffer"], opt2.state[q]["momentum_buffer"], rtol=1e-4)


def test_tiny_lenet_compiled_forward_and_backward_match_eager():
    torch.manual_seed(1)
    model = TinyLeNet().cuda()
    x, y = torch.randn(2, 1, 8, 8).cuda(), torch.randint(0, 4, (2,)).cuda()
    want = model(x)
    F.cross_entropy(want, y).backward()
    grads = [_host(p.grad) for p in model.parameters()]
    model.zero_grad()
    cm = torch.compile(model)
    out = _no_fallback(cm, x)
    _close(out, want)
    F.cross_entropy(out, y).backward()
    assert len(_programs(cm)) == 2  # forward and backward
    for p, g in zip(model.parameters(), grads):
        assert p.grad.is_cuda
        np.testing.assert_allclose(_host(p.grad), g, rtol=1e-4, atol=1e-6)


def test_compiled_module_under_no_grad():
    torch.manual_seed(2)
    model = TinyLeNet().cuda().eval()
    x = torch.randn(3, 1, 8, 8).cuda()
    cm = torch.compile(model)
    with torch.no_grad():
        got = _no_fallback(cm, x)
        want = model(x)
    assert got.grad_fn is None and len(_programs(cm)) == 1
    _close(got, want)


@pytest.mark.parametrize("relu", [True, False])
def test_linear_bias_and_relu_run_as_the_gemm_epilogue(relu):
    from graphnet.runtime import cuda_program

    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 7), *([nn.ReLU()] if relu else []), nn.Linear(7, 3)).cuda().eval()
    x = torch.randn(6, 5).cuda()
    cm = torch.compile(model)
    with torch.no_grad():
        got = _no_fallback(cm, x)
        want = model(x)
    _close(got, want)
    (prog,) = _programs(cm)
    gemms = [s for s in prog.steps if isinstance(s, cuda_program._Gemm)]
    assert [(g.bias is not None, g.relu) for g in gemms] == [(True, relu), (True, False)]
    assert sum(isinstance(s, cuda_program._Alias) for s in prog.steps) == 2  # both bias adds ran inside the GEMM
    assert [g.transposed for g in gemms] == [(False, True)] * 2  # x @ W.T reads W through strides, no copy
    assert {n.op for n in prog.read_transposed} == {"permute"} and len(prog.steps) == 4  # 2 GEMMs, 2 aliases


def test_cpu_scalar_tensors_join_the_gpu_program_and_stay_on_the_cpu():
    def f(x, s):
        return x * s + 1, s * 2

    x, s = torch.randn(4, 3), torch.tensor(1.5)
    cf = torch.compile(f)
    cf(x.cuda(), s)
    on_gpu, on_cpu = _no_fallback(cf, x.cuda(), s)
    _programs(cf)
    assert on_gpu.is_cuda and not on_cpu.is_cuda
    np.testing.assert_allclose(_host(on_gpu), x.numpy() * 1.5 + 1, rtol=1e-6)
    assert on_cpu.item() == 3.0


def test_inputs_on_two_devices_fall_back_to_eager_with_one_warning():
    f = torch.compile(lambda x, w: x * w + 1)
    x, w = torch.arange(5.0).cuda(), torch.ones(5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            try:
                f(x, w)
            except RuntimeError:
                pass  # eager itself refuses mixed devices; the point is the compile-time message
    messages = [str(w.message) for w in caught if "falling back to eager" in str(w.message)]
    assert len(messages) == 1 and "several devices" in messages[0] and "cpu, cuda:0" in messages[0]


def test_log_softmax_runs_on_the_device_and_matches_the_cpu():
    import graphnet.runtime.cuda_backend as backend

    x = torch.randn(5, 7, dtype=torch.float64)
    before = backend.FALLBACKS.get("log_softmax", 0)
    got = x.cuda().log_softmax(1)
    assert got.is_cuda and backend.FALLBACKS.get("log_softmax", 0) == before
    np.testing.assert_allclose(got.cpu().numpy(), x.log_softmax(1).numpy(), rtol=1e-12)
