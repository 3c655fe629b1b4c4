"""graphnet.compile on CUDA tensors: no compiled GPU Program yet, so it runs eagerly with one clear warning."""
import warnings

import numpy as np
import pytest

import graphnet as torch

pytestmark = pytest.mark.cuda


def test_compile_on_cuda_inputs_falls_back_to_eager_with_one_warning():
    f = torch.compile(lambda x: x * 2 + 1)
    x = torch.arange(5.0).cuda()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [f(x) for _ in range(3)]
    assert all(o.is_cuda for o in outs)
    np.testing.assert_allclose(outs[-1].cpu().numpy(), np.arange(5.0) * 2 + 1)
    messages = [str(w.message) for w in caught if "falling back to eager" in str(w.message)]
    assert len(messages) == 1 and "CPU only" in messages[0] and "cuda:0" in messages[0]


def test_log_softmax_runs_on_the_device_and_matches_the_cpu():
    import graphnet.runtime.cuda_backend as backend

    x = torch.randn(5, 7, dtype=torch.float64)
    before = backend.FALLBACKS.get("log_softmax", 0)
    got = x.cuda().log_softmax(1)
    assert got.is_cuda and backend.FALLBACKS.get("log_softmax", 0) == before
    np.testing.assert_allclose(got.cpu().numpy(), x.log_softmax(1).numpy(), rtol=1e-12)
