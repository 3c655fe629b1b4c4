"""DLPack interop on the CPU: graphnet.from_dlpack and Tensor.__dlpack__ share memory with NumPy both ways."""
import numpy as np
import pytest

import graphnet as torch


def test_numpy_views_a_tensor_through_dlpack_and_sees_its_writes():
    t = torch.arange(6.0).reshape(2, 3)
    arr = np.from_dlpack(t)
    assert arr.shape == (2, 3) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr, np.arange(6.0).reshape(2, 3))
    t.add_(10)
    np.testing.assert_array_equal(arr, np.arange(6.0).reshape(2, 3) + 10)
    arr[0, 0] = -1
    assert t[0, 0].item() == -1
    assert t.__dlpack_device__() == (1, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.int32, np.uint8])
def test_from_dlpack_shares_a_numpy_array(dtype):
    arr = np.arange(12, dtype=dtype).reshape(3, 4)
    t = torch.from_dlpack(arr)
    assert tuple(t.shape) == (3, 4) and t.dtype.np == np.dtype(dtype) and t.device == torch.device("cpu")
    arr[1, 2] = 99
    assert t[1, 2].item() == 99
    t.mul_(2)
    np.testing.assert_array_equal(arr.reshape(-1)[:3], np.array([0, 2, 4], dtype))


def test_round_trip_keeps_one_buffer():
    t = torch.randn(4, 5)
    back = torch.from_dlpack(np.from_dlpack(t))
    back[2] = 0.0
    assert float(t[2].abs().sum().item()) == 0.0
    np.testing.assert_array_equal(back.numpy(), t.numpy())


def test_from_dlpack_of_a_tensor_is_that_tensor():
    t = torch.ones(3)
    assert torch.from_dlpack(t) is t


def test_object_with_neither_protocol_is_a_type_error_naming_the_fix():
    with pytest.raises(TypeError, match=r"from_dlpack\(\): expected an object implementing __dlpack__.*got list"):
        torch.from_dlpack([1.0, 2.0])


def test_tensor_requiring_grad_cannot_be_exported():
    t = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="require gradient, use tensor.detach"):
        np.from_dlpack(t)
    assert np.from_dlpack(t.detach()).shape == (2,)


def test_read_only_view_is_refused_clearly():
    t = torch.ones(3).expand(2, 3)
    with pytest.raises(BufferError, match=r"read-only view.*clone\(\)"):
        np.from_dlpack(t)


def test_non_cpu_dlpack_producer_is_refused_clearly():
    class GpuProducer:
        def __dlpack__(self, stream=None):
            raise AssertionError("must not be called")

        def __dlpack_device__(self):
            return (2, 0)

    with pytest.raises(RuntimeError, match=r"only host \(CPU\) DLPack.*__cuda_array_interface__"):
        torch.from_dlpack(GpuProducer())
