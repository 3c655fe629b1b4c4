"""scatter / scatter_add / index_add, einsum, roll and repeat_interleave on a CUDA device vs the CPU, at small sizes.

einsum, roll and repeat_interleave are composites of ops with device kernels; scatter and index_add have no device
kernel yet and run on the host (inputs copied over and back), counted in cuda_backend.FALLBACKS with one warning."""
import warnings

import numpy as np
import pytest

import graphnet
from graphnet.runtime import cuda_backend

pytestmark = pytest.mark.cuda
RNG = np.random.default_rng(11)


def _pair(a, requires_grad=False):
    """The same float32 values as a CPU tensor and a CUDA tensor (both leaves)."""
    cpu = graphnet.tensor(np.asarray(a, np.float32), requires_grad=requires_grad)
    gpu = graphnet.tensor(np.asarray(a, np.float32)).cuda().requires_grad_(requires_grad)
    return cpu, gpu


def _host_fallbacks(name):
    return cuda_backend.FALLBACKS.get(name, 0)


@pytest.mark.parametrize("fn, op", [
    (lambda x, s, i, j: x.scatter_add(1, i, s), "scatter"),
    (lambda x, s, i, j: x.scatter(1, i, s), "scatter"),
    (lambda x, s, i, j: x.scatter(1, i, 2.5, reduce="multiply"), "scatter"),
    (lambda x, s, i, j: x.index_add(0, j, s, alpha=2.0), "index_add"),
])
def test_scatter_family_runs_on_the_host_and_matches_the_cpu(fn, op):
    x_cpu, x_gpu = _pair(RNG.standard_normal((3, 4)))
    s_cpu, s_gpu = _pair(RNG.standard_normal((2, 4)))
    idx = np.array([[0, 1, 3], [2, 3, 0]])
    rows = np.array([2, 2])
    before = _host_fallbacks(op)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "has no device kernel yet", once per op and process
        got = fn(x_gpu, s_gpu[:, :3] if op == "scatter" else s_gpu, graphnet.tensor(idx).cuda(),
                 graphnet.tensor(rows).cuda())
    want = fn(x_cpu, s_cpu[:, :3] if op == "scatter" else s_cpu, graphnet.tensor(idx), graphnet.tensor(rows))
    assert got.is_cuda and _host_fallbacks(op) == before + 1
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-6)


def test_scatter_add_gradients_on_the_device():
    x_cpu, x_gpu = _pair(RNG.standard_normal((3, 4)), requires_grad=True)
    s_cpu, s_gpu = _pair(RNG.standard_normal((2, 3)), requires_grad=True)
    idx = np.array([[0, 1, 1], [2, 3, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        (x_gpu.scatter_add(1, graphnet.tensor(idx).cuda(), s_gpu) ** 2).sum().backward()
    (x_cpu.scatter_add(1, graphnet.tensor(idx), s_cpu) ** 2).sum().backward()
    for a, b in ((x_gpu, x_cpu), (s_gpu, s_cpu)):
        assert a.grad.is_cuda
        np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("equation, shapes", [("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]), ("ii->i", [(3, 3)]),
                                              ("i,j->ij", [(3,), (2,)]), ("...ij,...jk", [(2, 2, 3), (3, 2)])])
def test_einsum_on_the_device(equation, shapes):
    pairs = [_pair(RNG.standard_normal(s), requires_grad=True) for s in shapes]
    got = graphnet.einsum(equation, *(g for _, g in pairs))
    want = graphnet.einsum(equation, *(c for c, _ in pairs))
    assert got.is_cuda
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    got.sum().backward()
    want.sum().backward()
    for c, g in pairs:
        np.testing.assert_allclose(g.grad.cpu().numpy(), c.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_roll_and_repeat_interleave_on_the_device():
    cpu, gpu = _pair(np.arange(12.0).reshape(3, 4))
    for fn in (lambda t: t.roll(1), lambda t: t.roll((1, -1), (0, 1)), lambda t: t.repeat_interleave(2, dim=1),
               lambda t: t.unflatten(1, (2, 2))):
        got = fn(gpu)
        assert got.is_cuda
        np.testing.assert_array_equal(got.cpu().numpy(), fn(cpu).numpy())
