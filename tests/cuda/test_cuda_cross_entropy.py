"""Cross-entropy over class indices on CUDA: the row kernels vs the ops' NumPy impls, F.cross_entropy forward and
backward vs the CPU, a compiled step on the device, NaN (not a crash) from the row kernels for a target out of
range, and a compiled step that refuses one with the eager error."""
import re

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn.functional as F
from graphnet.core.bind import bind
from graphnet.ir.ops import OPS
from graphnet.runtime import cuda_backend

pytestmark = pytest.mark.cuda
RNG = np.random.default_rng(7)
IGNORE = -100


def _case(dtype):
    x = (RNG.standard_normal((5, 3)) * 3).astype(dtype)
    x[0, 0], x[3, 1] = 1e4, -np.inf
    return x, np.array([1, IGNORE, 2, 0, 9]), RNG.standard_normal(5).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_kernels_match_the_impls_and_give_nan_for_a_bad_target(dtype):
    x, t, g = _case(dtype)
    xc, tc, gc = (torch.tensor(a).cuda() for a in (x, t, g))
    before = dict(cuda_backend.FALLBACKS)
    loss = bind("cross_entropy_rows", xc, tc, ignore_index=IGNORE)
    dx = bind("cross_entropy_rows_backward", gc, xc, tc, ignore_index=IGNORE)
    assert loss.is_cuda and dx.is_cuda and cuda_backend.FALLBACKS == before
    ok = t != 9
    tol = 2e-6 if dtype == np.float32 else 1e-12
    want = OPS["cross_entropy_rows"].impl(x[ok], t[ok], ignore_index=IGNORE)
    np.testing.assert_allclose(loss.cpu().numpy()[ok], want, rtol=tol, atol=tol)
    want = OPS["cross_entropy_rows_backward"].impl(g[ok], x[ok], t[ok], ignore_index=IGNORE)
    np.testing.assert_allclose(dx.cpu().numpy()[ok], want, rtol=tol, atol=tol)
    assert np.isnan(loss.cpu().numpy()[4]) and np.isnan(dx.cpu().numpy()[4]).all()


def test_functional_and_compiled_cross_entropy_on_the_device_match_the_cpu():
    x, t, _ = _case(np.float32)
    t[4] = 1

    def step(a, b):
        loss = F.cross_entropy(a, b)
        loss.backward()
        return loss

    cpu_x = torch.tensor(x, requires_grad=True)
    want = step(cpu_x, torch.tensor(t))
    compiled = torch.compile(step)
    before = dict(cuda_backend.FALLBACKS)
    for fn in (step, compiled, compiled):  # a compiled function runs its first call eagerly
        dev_x = torch.tensor(x).cuda().requires_grad_()
        got = fn(dev_x, torch.tensor(t).cuda())
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
        np.testing.assert_allclose(dev_x.grad.cpu().numpy(), cpu_x.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert "cross_entropy_rows_backward" in [n.op for n in compiled.graph("optimized").nodes]
    assert cuda_backend.FALLBACKS == before


@pytest.mark.parametrize("loss, dtype, bad", [
    ("cross_entropy", torch.int64, 7), ("cross_entropy", torch.int64, -5), ("cross_entropy", torch.int64, 10 ** 8),
    ("nll_loss", torch.int64, 3), ("cross_entropy", torch.int32, -1), ("nll_loss", torch.int32, 10 ** 8),
])
def test_a_compiled_device_step_refuses_a_bad_label_before_any_update(bad_index_step, loss, dtype, bad):
    """int64 labels are a Program input, checked before the first launch; int32 ones are cast on the device and
    checked by the check_targets kernel's error flag. Either way: the eager error, and no weight written."""
    fn = F.cross_entropy if loss == "cross_entropy" else lambda out, y: F.nll_loss(out.log_softmax(1), y)
    case = bad_index_step(fn, "cuda")
    labels = [0, 1, 2, IGNORE, 1]
    case.check(torch.tensor(labels, dtype=dtype), torch.tensor(labels[:2] + [bad] + labels[3:], dtype=dtype),
               IndexError, re.escape(f"Target {bad} is out of bounds. ({loss}: input has 3 classes"))
    (program,) = case.compiled._last.programs
    assert type(program).__name__ == "CudaProgram" and bool(program.input_checks.checks) == (dtype is torch.int64)
