"""Tensor creation, attributes, conversion, printing and NumPy interop, as the PyTorch tutorial uses them."""
import numpy as np
import pytest

import graphnet as torch


def test_legacy_constructors_and_uninitialised_tensor():
    t = torch.Tensor(5, 3)
    assert t.shape == (5, 3) and t.dtype is torch.float32
    assert torch.FloatTensor([0.1, 1.0]).dtype is torch.float32
    assert torch.LongTensor([1, 2]).dtype is torch.int64
    assert torch.FloatTensor(2, 3).shape == (2, 3)


def test_creation_functions():
    assert torch.zeros(2, 3).sum().item() == 0 and torch.ones((2, 3)).sum().item() == 6
    np.testing.assert_array_equal(torch.full((2,), 7).numpy(), [7, 7])
    assert torch.full((2,), 7).dtype is torch.int64 and torch.full((2,), 7.0).dtype is torch.float32
    np.testing.assert_array_equal(torch.arange(5).numpy(), np.arange(5))
    assert torch.arange(0, 1, 0.25).dtype is torch.float32
    np.testing.assert_allclose(torch.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(torch.eye(3).numpy(), np.eye(3))
    x = torch.randn(4, 5, dtype=torch.float64)
    assert torch.zeros_like(x).dtype is torch.float64 and torch.ones_like(x).shape == (4, 5)
    assert torch.rand_like(x).shape == (4, 5) and torch.randn_like(x).dtype is torch.float64
    r = torch.rand(1000)
    assert 0 <= r.min().item() and r.max().item() < 1


def test_manual_seed_is_reproducible():
    torch.manual_seed(42)
    a = torch.randn(3)
    torch.manual_seed(42)
    b = torch.randn(3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    torch.manual_seed(42)
    c = torch.normal(torch.zeros(3), torch.ones(3))
    assert c.shape == (3,)


def test_tensor_infers_dtype_and_copies():
    a = np.array([1.0, 2.0])
    t = torch.tensor(a)
    a[0] = 5
    assert t[0].item() == 1.0
    assert torch.tensor([1, 2]).dtype is torch.int64 and torch.tensor([1.5]).dtype is torch.float32
    assert torch.tensor([True]).dtype is torch.bool
    assert torch.tensor(a, dtype=torch.float16).dtype is torch.float16
    with pytest.raises(ValueError, match="ragged"):
        torch.tensor([[1, 2], [3]])


def test_from_numpy_and_numpy_share_memory_both_ways():
    a = np.ones(5)
    b = torch.from_numpy(a)
    np.add(a, 1, out=a)
    np.testing.assert_array_equal(b.numpy(), np.full(5, 2.0))
    b.add_(1)
    np.testing.assert_array_equal(a, np.full(5, 3.0))
    c = torch.ones(3)
    n = c.numpy()
    c.add_(1)
    np.testing.assert_array_equal(n, [2, 2, 2])
    assert torch.as_tensor(a).numpy() is a


def test_attributes():
    x = torch.ones(5, 3)
    assert x.size() == torch.Size([5, 3]) and x.size(1) == 3 and x.size(-1) == 3
    assert repr(x.size()) == "graphnet.Size([5, 3])"
    assert x.dim() == 2 and x.numel() == 15 and x.ndim == 2
    assert x.device == torch.device("cpu") and not x.is_cuda
    assert x.is_leaf and x.grad is None and x.grad_fn is None and not x.requires_grad
    assert torch.tensor(2.5).item() == 2.5 and torch.tensor([[1, 2]]).tolist() == [[1, 2]]
    assert x.T.shape == (3, 5)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.size(2)


def test_conversions():
    x = torch.tensor([1.7, -2.2])
    assert x.long().dtype is torch.int64 and x.long().tolist() == [1, -2]
    assert x.int().dtype is torch.int32 and x.double().dtype is torch.float64 and x.bool().dtype is torch.bool
    assert x.to(torch.float64).dtype is torch.float64 and x.float() is x
    assert x.to("cpu") is x and x.cpu() is x
    assert x.type() == "graphnet.FloatTensor" and x.to(torch.float16).half().dtype is torch.float16
    y = torch.ones(2, requires_grad=True)
    y.double().sum().backward()
    assert y.grad.dtype is torch.float32


def test_numpy_on_requires_grad_says_detach():
    with pytest.raises(RuntimeError, match=r"Use tensor.detach\(\).numpy\(\) instead"):
        torch.ones(1, requires_grad=True).numpy()


def test_item_and_bool_errors():
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to Scalar"):
        torch.ones(2).item()
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        bool(torch.ones(2))


def test_repr_matches_pytorch():
    assert repr(torch.tensor([[1.0, 2.0]]) * 1) == "tensor([[1., 2.]])"
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    assert repr(x) == "tensor([[1., 2.]], requires_grad=True)"
    assert repr(x * 2) == "tensor([[2., 4.]], grad_fn=<MulBackward0>)"
    assert repr(torch.tensor([0.5, 1.25])) == "tensor([0.5000, 1.2500])"
    assert repr(torch.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(torch.tensor([1.0], dtype=torch.float64)) == "tensor([1.], dtype=graphnet.float64)"
    assert repr(torch.tensor(3.5)) == "tensor(3.5000)"
    assert repr(torch.tensor([True, False])) == "tensor([ True, False])"


def test_devices():
    d = torch.device("cuda:1")
    assert d.type == "cuda" and d.index == 1 and str(d) == "cuda:1"
    assert repr(torch.device("cpu")) == "device(type='cpu')"
    assert torch.device("cpu") == "cpu" and torch.device("cuda", 0) == torch.device("cuda:0")
    assert torch.cuda.is_available() in (True, False)
    assert torch.cuda.device_count() == (0 if not torch.cuda.is_available() else torch.cuda.device_count())
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda device type"):
        torch.device("tpu")


def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("GRAPHNET_DISABLE_CUDA", "1")
    with pytest.raises(RuntimeError, match="no CUDA GPU is available"):
        torch.ones(2).cuda()
    assert not torch.cuda.is_available() and torch.cuda.device_count() == 0


def test_creation_out_and_size_keywords():
    t = torch.full((2, 3), 5.0)
    assert torch.zeros(2, 3, out=t) is t and t.sum().item() == 0
    assert torch.ones(size=(2, 1)).shape == (2, 1) and torch.rand(size=(4,)).shape == (4,)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        torch.ones(3, out=t)
