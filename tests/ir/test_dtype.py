"""dtype names, aliases and PyTorch's promotion rules (tensor > 0-d tensor > Python scalar)."""
import numpy as np
import pytest

import graphnet as torch
from graphnet.core import dtype as dt


def test_aliases():
    assert torch.float is torch.float32 and torch.double is torch.float64 and torch.long is torch.int64
    assert torch.int is torch.int32 and torch.half is torch.float16
    assert repr(torch.float32) == "graphnet.float32"


@pytest.mark.parametrize("a,b,want", [
    (dt.uint8, dt.int8, dt.int16), (dt.int32, dt.float16, dt.float16), (dt.bool_, dt.int8, dt.int8),
    (dt.int64, dt.float32, dt.float32), (dt.float32, dt.float64, dt.float64),
])
def test_promote_types(a, b, want):
    assert dt.promote_types(a, b) is want
    assert torch.promote_types(b, a) is want


def test_result_type_tiers():
    i32, f64_0d = torch.tensor([1], dtype=torch.int32), torch.tensor(1.0, dtype=torch.float64)
    assert (i32 + 1).dtype is torch.int32
    assert (i32 + 1.5).dtype is torch.float32
    assert (i32 + f64_0d).dtype is torch.float64
    assert (torch.tensor([1.0]) + torch.tensor(1, dtype=torch.int64)).dtype is torch.float32
    assert (torch.tensor([True]) + 1).dtype is torch.int64
    assert (torch.tensor([1, 2]) / 2).dtype is torch.float32
    assert (torch.tensor([1.0], dtype=torch.float16) * 2.0).dtype is torch.float16


def test_unknown_dtype_is_a_clear_error():
    with pytest.raises(TypeError, match="unsupported dtype"):
        dt.as_dtype(np.complex64)


def test_set_default_dtype_rejects_ints():
    with pytest.raises(TypeError, match="only floating-point types"):
        torch.set_default_dtype(torch.int64)
