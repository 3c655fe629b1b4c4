"""cumsum/cumprod device kernels, tril/triu (device elementwise ops), and sort/topk/multinomial (argsort on the host
fallback) on CUDA tensors vs the CPU."""
import numpy as np
import pytest

import graphnet
from graphnet.runtime import cuda_backend

pytestmark = pytest.mark.cuda
A = np.random.default_rng(3).permutation(24).reshape(2, 3, 4).astype(np.float32) - 7.5


def _fallbacks(*names):
    return {k: cuda_backend.FALLBACKS.get(k, 0) for k in names}


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("dtype", [graphnet.float32, graphnet.int32, graphnet.bool])
def test_scans_run_their_device_kernel(name, dim, dtype):
    before = _fallbacks(name)
    x = graphnet.tensor((A / 4).astype(dtype.np) if dtype is not graphnet.bool else A > 0)
    got = getattr(graphnet, name)(x.cuda(), dim)
    want = getattr(graphnet, name)(x, dim)
    assert got.is_cuda and got.dtype is want.dtype
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-6)
    assert _fallbacks(name) == before


def test_scans_of_strided_zero_dim_and_empty_inputs():
    x = graphnet.tensor(A).cuda()
    np.testing.assert_allclose(x.transpose(0, 2).cumsum(1).cpu().numpy(), np.cumsum(A.transpose(2, 1, 0), 1),
                               rtol=1e-6)
    assert graphnet.tensor(2.5).cuda().cumprod(0).cpu().item() == 2.5
    assert graphnet.ones(0, 3).cuda().cumsum(0).shape == (0, 3)


def test_scan_gradients_on_device():
    a = np.array([[0.5, 0.0, 2.0, -1.5], [1.2, 0.7, -0.3, 2.0]], np.float32)
    grads = []
    for dev in ("cpu", "cuda"):
        x = graphnet.tensor(a).to(dev).requires_grad_()
        (graphnet.cumprod(x, 1) + graphnet.cumsum(x, 0)).sum().backward()
        grads.append(x.grad.cpu().numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)


def test_triangles_on_device_with_gradient():
    before = _fallbacks("where", "le", "ge", "sub")
    x = graphnet.tensor(A).cuda().requires_grad_()
    out = graphnet.tril(x, 1) + graphnet.triu(x, -1)
    assert out.is_cuda
    np.testing.assert_array_equal(out.detach().cpu().numpy(), np.tril(A, 1) + np.triu(A, -1))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), np.tril(np.ones_like(A), 1) + np.triu(np.ones_like(A), -1))
    assert _fallbacks("where", "le", "ge", "sub") == before


@pytest.mark.filterwarnings("ignore:graphnet CUDA. op 'argsort'")
def test_sort_topk_on_device_through_the_host_argsort():
    x = graphnet.tensor(A).cuda().requires_grad_()
    values, indices = graphnet.sort(x, 1, descending=True)
    assert values.is_cuda and indices.is_cuda and indices.dtype is graphnet.int64
    want = graphnet.sort(graphnet.tensor(A), 1, descending=True)
    np.testing.assert_array_equal(values.detach().cpu().numpy(), want.values.numpy())
    np.testing.assert_array_equal(indices.cpu().numpy(), want.indices.numpy())
    top = x.topk(2)
    np.testing.assert_array_equal(top.indices.cpu().numpy(), graphnet.tensor(A).topk(2).indices.numpy())
    top.values.sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy().sum(-1), np.full((2, 3), 2.0))


@pytest.mark.filterwarnings("ignore:graphnet CUDA. op 'argsort'")
@pytest.mark.parametrize("replacement", [True, False])
def test_multinomial_on_device_is_seeded(replacement):
    p = graphnet.tensor([[1.0, 0.0, 3.0], [2.0, 2.0, 0.0]]).cuda()
    graphnet.manual_seed(4)
    a = graphnet.multinomial(p, 2, replacement)
    graphnet.manual_seed(4)
    b = graphnet.multinomial(p, 2, replacement)
    assert a.is_cuda and a.dtype is graphnet.int64 and a.cpu().tolist() == b.cpu().tolist()
    rows = a.cpu().numpy()
    assert 1 not in rows[0]
    assert set(rows[1]) <= {0, 1} and (replacement or len(set(rows[1])) == 2)


def test_compiled_scans_and_triangles_on_device():
    before = _fallbacks("cumsum", "cumprod")
    x = graphnet.tensor(A[0]).cuda()
    f = graphnet.compile(lambda t: (graphnet.cumsum(t, 1) / 8 + graphnet.tril(t)).cumprod(0))
    for _ in range(2):
        out = f(x)
    assert out.is_cuda and f.stats()["programs"] == 1
    np.testing.assert_allclose(out.cpu().numpy(), np.cumprod(np.cumsum(A[0], 1) / 8 + np.tril(A[0]), 0), rtol=1e-5)
    assert _fallbacks("cumsum", "cumprod") == before
