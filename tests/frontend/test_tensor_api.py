"""Tensor creation, attributes, conversion, printing and NumPy interop, as the PyTorch tutorial uses them."""
import numpy as np
import pytest

import graphnet
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


# ---- PyTorch API pieces: int32 indices, grad-mode decorators, new_*/like creation, masked_fill ----------------------
def test_int32_and_int64_indices_are_accepted_everywhere():
    torch = pytest.importorskip("torch")
    x = np.arange(12.0).reshape(3, 4)
    for dtype in ("int32", "int64"):
        idx = np.array([2, 0], dtype=dtype)
        ours, ref = graphnet.tensor(x), torch.tensor(x)
        np.testing.assert_array_equal(ours.index_select(1, graphnet.tensor(idx)).numpy(),
                                      ref.index_select(1, torch.tensor(idx)).numpy())
        np.testing.assert_array_equal(ours[graphnet.tensor(idx)].numpy(), ref[torch.tensor(idx)].numpy())
        np.testing.assert_array_equal(ours.gather(1, graphnet.tensor(idx.reshape(1, 2))).numpy(),
                                      ref.gather(1, torch.tensor(idx.reshape(1, 2))).numpy())
        np.testing.assert_array_equal(graphnet.nn.functional.embedding(graphnet.tensor(idx), ours).numpy(),
                                      torch.nn.functional.embedding(torch.tensor(idx), ref).numpy())


@pytest.mark.parametrize("mode", ["no_grad", "enable_grad", "inference_mode"])
def test_grad_modes_decorate_with_and_without_the_call(mode):
    a = graphnet.ones(2, requires_grad=True)
    ctx = getattr(graphnet, mode)

    @ctx()
    def called(t):
        return t * 2

    @ctx
    def bare(t):
        """kept by functools.wraps"""
        return t * 2

    expected = mode == "enable_grad"
    assert called(a).requires_grad is expected and bare(a).requires_grad is expected
    assert bare.__doc__ == "kept by functools.wraps"
    with graphnet.inference_mode(False):
        assert (a * 2).requires_grad


def test_creation_helpers_match_torch():
    torch = pytest.importorskip("torch")
    for mod in (graphnet, torch):
        x = mod.arange(6.0, device="cpu").reshape(2, 3)
        i = mod.arange(3)
        got = [x.new_zeros(2, 3), x.new_ones((2,)), x.new_full((2,), 3), i.new_full((2,), 3.5), x.new_empty(4),
               x.new_tensor([1, 2]), i.new_tensor([1.5]), i.type_as(x), mod.full_like(i, 7.9), mod.full_like(x, 2),
               mod.zeros_like(x, dtype=mod.int64), mod.ones_like(i, dtype=mod.bfloat16)]
        if mod is graphnet:
            ours = got
        else:
            for a, b in zip(ours, got):
                assert a.dtype.name == str(b.dtype).split(".")[1] and tuple(a.shape) == tuple(b.shape)
                if a is not ours[4]:  # new_empty: uninitialised
                    np.testing.assert_array_equal(a.float().numpy(), b.float().numpy())
    x = graphnet.arange(6.0).reshape(2, 3)
    assert x.size(-1) == 3 and x.size(-2) == 2 and x.numel() == 6 == graphnet.numel(x)
    assert isinstance(graphnet.manual_seed(3), graphnet.Generator)
    assert graphnet.manual_seed(3).initial_seed() == 3


def test_masked_fill_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(6.0).reshape(2, 3)
    for mod in (graphnet, torch):
        t, i = mod.tensor(x), mod.arange(3)
        got = [t.masked_fill(t > 2, -1.0), i.masked_fill(mod.tensor([True, False, True]), 1.5),
               t.masked_fill(t > 2, mod.tensor(7.0, dtype=mod.float64)), t.clone().masked_fill_(t < 1, 9)]
        if mod is graphnet:
            ours = got
    for a, b in zip(ours, got):
        assert a.dtype.name == str(b.dtype).split(".")[1]
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    v = graphnet.tensor(2.0, requires_grad=True)
    graphnet.zeros(3).masked_fill(graphnet.tensor([True, False, True]), v).sum().backward()
    assert v.grad.item() == 2.0
    t = graphnet.tensor(x)
    with pytest.raises(RuntimeError, match="masked_fill_ only supports boolean masks, but got mask with dtype float"):
        t.masked_fill(t.float(), 1.0)
    with pytest.raises(RuntimeError, match="only supports boolean masks, but got mask with dtype long int"):
        t.masked_fill(t.long(), 1.0)
    with pytest.raises(RuntimeError, match=r"only supports a 0-dimensional value tensor, but got tensor with 1 "
                                           r"dimension\(s\)."):
        t.masked_fill(t > 2, graphnet.tensor([1.0]))


@pytest.mark.parametrize("value,spec", [(1.23456, "+.2f"), (1.23456, ""), (1.23456, ">10"), (-0.000123, ".3e"),
                                        (31, "x"), (31, "+d"), (True, "")])
def test_zero_dim_tensors_format_as_their_number(value, spec):
    """'{:+.2f}'.format(w) on a tensor element (pytorch/examples' regression prints its weights so)."""
    assert format(torch.tensor(value), spec) == format(torch.tensor(value).item(), spec)


def test_format_spec_on_a_non_scalar_or_a_parameter_raises_as_in_pytorch():
    assert format(torch.tensor([1.0, 2.0]), "") == str(torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="unsupported format string passed to Tensor.__format__"):
        format(torch.tensor([1.0, 2.0]), ".2f")
    with pytest.raises(TypeError, match="unsupported format string passed to Parameter.__format__"):
        format(torch.nn.Parameter(torch.tensor(1.0)), ".2f")
