"""Eager CUDA views: a reshape shares its base's memory and version counter (as on the CPU); ops that copy do not."""
import numpy as np
import pytest

import graphnet
from graphnet.runtime import storage

pytestmark = pytest.mark.cuda


def test_a_reshape_is_a_view_that_in_place_writes_reach_the_base():
    x = graphnet.arange(6.0).to("cuda")
    v = x.reshape(2, 3)
    assert v._base is x and v._version is x._version
    v.add_(1.0)
    np.testing.assert_array_equal(x.cpu().numpy(), np.arange(1.0, 7.0, dtype=np.float32))


def test_a_saved_tensor_changed_through_a_view_is_refused_in_backward():
    w = graphnet.ones(4, requires_grad=True, device="cuda")
    y = w * 2
    z = y.exp()  # exp saves its output
    with graphnet.no_grad():
        z.reshape(2, 2).mul_(3.0)  # bumps z's version through the view
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_copies_are_not_views():
    x = graphnet.arange(6.0).to("cuda").reshape(2, 3)
    t = x.t()  # a strided copy on the GPU
    assert t._base is None and not storage.may_share_memory(t._data, x._data)
    assert storage.may_share_memory(x._data, x.reshape(6)._data)
