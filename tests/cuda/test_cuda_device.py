"""CUDA tensors: the graphnet.cuda API, transfers, device errors, the caching allocator, OOM and interop."""
import numpy as np
import pytest

import graphnet
from graphnet.runtime import storage

pytestmark = pytest.mark.cuda


def test_cuda_api_answers():
    assert graphnet.cuda.is_available() and graphnet.cuda.device_count() >= 1
    assert graphnet.cuda.current_device() == 0
    assert graphnet.device("cuda:0") == graphnet.device("cuda", 0)
    graphnet.cuda.synchronize()
    assert isinstance(graphnet.cuda.get_device_name(), str)


def test_round_trip_and_properties():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = graphnet.tensor(a).cuda()
    assert x.is_cuda and x.device == graphnet.device("cuda:0") and x.shape == (3, 4)
    np.testing.assert_array_equal(x.cpu().numpy(), a)
    assert not x.cpu().is_cuda and x.to("cuda") is x
    assert graphnet.tensor(a).to(0).device == graphnet.device("cuda:0")  # an int is a device index, as in torch
    assert graphnet.nn.Linear(2, 3).to(0).weight.is_cuda and x.to(0, graphnet.float64).dtype == graphnet.float64
    assert "device='cuda:0'" in repr(x)
    assert x.tolist() == a.tolist() and x[1, 2].item() == 6.0


@pytest.mark.parametrize("make", [lambda: graphnet.zeros(2, 3, device="cuda"),
                                  lambda: graphnet.ones(2, 3, device="cuda"),
                                  lambda: graphnet.arange(6, device="cuda"),
                                  lambda: graphnet.randn(2, 3, device="cuda")])
def test_creation_on_cuda(make):
    assert make().is_cuda


def test_numpy_on_cuda_tensor_raises_pytorch_type_error():
    with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu()"):
        graphnet.ones(2, device="cuda").numpy()


def test_mixing_devices_raises():
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device, but found at least two "
                                           "devices, (cuda:0 and cpu|cpu and cuda:0)!"):
        graphnet.ones(3, device="cuda") + graphnet.ones(3)


def test_transfer_is_differentiable():
    x = graphnet.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = (x.cuda() * x.cuda()).sum()
    y.backward()
    assert y.is_cuda and not x.grad.is_cuda
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])


def test_allocator_reuses_freed_blocks_and_counts_bytes():
    graphnet.cuda.empty_cache()
    base = graphnet.cuda.memory_allocated()
    x = graphnet.zeros(1000, device="cuda")  # 4000 bytes -> one 4096-byte block
    assert graphnet.cuda.memory_allocated() - base == 4096
    assert graphnet.cuda.max_memory_allocated() >= base + 4096
    reserved = graphnet.cuda.memory_reserved()
    raw = x._data._gn_storage.raw
    del x
    assert graphnet.cuda.memory_allocated() == base and graphnet.cuda.memory_reserved() == reserved
    y = graphnet.zeros(999, device="cuda")  # same size class: the freed block comes back
    assert y._data._gn_storage.raw is raw and graphnet.cuda.memory_reserved() == reserved
    del y
    graphnet.cuda.empty_cache()
    assert graphnet.cuda.memory_reserved() == reserved - 4096


def test_views_keep_the_block_alive():
    x = graphnet.arange(8.0, device="cuda")
    v = x.reshape(2, 4)
    before = graphnet.cuda.memory_allocated()
    del x
    assert graphnet.cuda.memory_allocated() == before
    np.testing.assert_array_equal(v.cpu().numpy(), np.arange(8.0).reshape(2, 4))


def test_out_of_memory_error_names_request_and_holdings(monkeypatch):
    keep = graphnet.zeros(10, device="cuda")
    graphnet.cuda.empty_cache()
    held = graphnet.cuda.memory_allocated()
    monkeypatch.setenv("GRAPHNET_CUDA_MEMORY_LIMIT", str(held + 8192))
    holds = storage._fmt_bytes(held)  # earlier tests may leave cached blocks: "512 bytes" or "1.50 KiB"
    with pytest.raises(graphnet.cuda.OutOfMemoryError, match=r"CUDA out of memory. Tried to allocate 39.06 KiB on "
                                                             rf"cuda:0.*graphnet holds {holds} allocated"):
        graphnet.zeros(10000, device="cuda")
    assert issubclass(graphnet.cuda.OutOfMemoryError, RuntimeError) and keep.is_cuda


class _Exporter:
    """A foreign array that only speaks the CUDA Array Interface."""

    def __init__(self, arr):
        self.arr = arr
        self.__cuda_array_interface__ = storage.cuda_array_interface(arr)


def test_cuda_array_interface_round_trip_with_numba_arrays():
    from numba import cuda

    dev = cuda.to_device(np.arange(6, dtype=np.float32))
    t = graphnet.as_tensor(_Exporter(dev))
    assert t.is_cuda and t.dtype is graphnet.float32
    dev[2] = 40.0  # zero-copy: the tensor sees the write
    assert t[2].item() == 40.0
    desc = t.__cuda_array_interface__
    assert desc["data"][0] == storage.cuda_array_interface(dev)["data"][0] and desc["shape"] == (6,)
    assert desc["typestr"] == np.dtype(np.float32).str
    back = storage.as_device_array(t)
    np.testing.assert_array_equal(back.copy_to_host(), [0, 1, 40, 3, 4, 5])


def test_cpu_tensor_has_no_cuda_array_interface():
    with pytest.raises(AttributeError, match="non-CUDA tensor .device cpu.. If CUDA data is required use tensor.cuda"):
        _ = graphnet.ones(2).__cuda_array_interface__
