"""graphnet.from_dlpack on CUDA memory: objects exposing __cuda_array_interface__ become zero-copy CUDA tensors."""
import numpy as np
import pytest

import graphnet as torch

pytestmark = pytest.mark.cuda


class _Exporter:
    """A foreign device array: only the CUDA Array Interface, no DLPack."""

    def __init__(self, t):
        self.__cuda_array_interface__ = t.__cuda_array_interface__
        self.keep = t


def test_from_dlpack_of_a_cuda_array_interface_object_shares_memory():
    src = torch.arange(6.0).reshape(2, 3).cuda()
    t = torch.from_dlpack(_Exporter(src))
    assert t.is_cuda and tuple(t.shape) == (2, 3) and t.__dlpack_device__() == (2, 0)
    t.add_(1)
    np.testing.assert_array_equal(src.cpu().numpy(), np.arange(6.0).reshape(2, 3) + 1)


def test_cuda_tensor_dlpack_export_points_to_the_cuda_array_interface():
    with pytest.raises(BufferError, match="CPU tensors only.*__cuda_array_interface__"):
        torch.ones(2).cuda().__dlpack__()
