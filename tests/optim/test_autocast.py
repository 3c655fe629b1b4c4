"""graphnet.autocast / amp.autocast / cuda.amp.autocast: PyTorch's context manager and decorator; the region runs in
the inputs' precision (graphnet has no mixed-precision kernels), saying so once."""
import warnings

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn


def test_an_autocast_region_computes_in_full_precision_and_says_so():
    torch.amp.autocast_mode._WARNED.clear()
    model, x = nn.Linear(4, 3), torch.randn(2, 4)
    want = model(x)
    with pytest.warns(UserWarning, match="run in their inputs' precision, not bfloat16"):
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            assert torch.is_autocast_enabled("cpu") and torch.amp.get_autocast_dtype("cpu") is torch.bfloat16
            got = model(x)
    assert not torch.is_autocast_enabled("cpu") and got.dtype is torch.float32
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per device type
        with torch.amp.autocast("cpu"):
            pass
        with torch.autocast("cpu", enabled=False):
            assert not torch.is_autocast_enabled("cpu")


def test_autocast_as_a_decorator_and_the_cuda_spellings():
    @torch.autocast("cpu", enabled=False)
    def f(a):
        return torch.is_autocast_enabled("cpu"), a * 2
    assert f(torch.ones(1))[0] is False
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="User provided device_type of 'cuda', but CUDA is not available"):
            region = torch.autocast("cuda")
        with region:
            assert not torch.is_autocast_enabled()
        with pytest.warns(FutureWarning, match="torch.cuda.amp.autocast\\(args...\\)` is deprecated"):
            torch.cuda.amp.autocast(enabled=False)


def test_bad_device_types_raise_as_in_pytorch():
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        torch.autocast(0)
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'tpu'"):
        torch.autocast("tpu")
