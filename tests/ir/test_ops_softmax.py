"""log_softmax: the primitive vs the stable NumPy formula, its gradient, all-infinite slices, and the compiled
library kernel vs the op's reference implementation."""
import numpy as np
import pytest

import graphnet as torch
from graphnet.autograd import gradcheck
from graphnet.codegen.templates import softmax
from graphnet.ir.ops import OPS

RNG = np.random.default_rng(0)


def _ref(x, dim):
    m = x.max(axis=dim, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=dim, keepdims=True))


@pytest.mark.parametrize("shape,dim", [((4, 7), 1), ((4, 7), 0), ((2, 3, 5), -1), ((2, 3, 5), 1), ((6,), 0)])
def test_values_and_gradient(shape, dim):
    x = RNG.standard_normal(shape) * 10
    out = torch.tensor(x, dtype=torch.float32).log_softmax(dim)
    np.testing.assert_allclose(out.numpy(), _ref(x, dim), rtol=1e-5, atol=1e-5)
    assert out.grad_fn is None or out.grad_fn.name() == "LogSoftmaxBackward0"
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    assert t.log_softmax(dim).grad_fn.name() == "LogSoftmaxBackward0"
    assert gradcheck(lambda a: a.log_softmax(dim), (t,))


def test_all_negative_infinite_row_is_nan_as_in_pytorch_and_large_logits_are_stable():
    x = torch.tensor([[-np.inf, -np.inf], [1e4, 0.0], [-np.inf, 0.0]])
    out = x.log_softmax(1).numpy()
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    np.testing.assert_array_equal(out[2], [-np.inf, 0.0])
    np.testing.assert_allclose(out[1], [0.0, -1e4], rtol=1e-6)


def test_zero_dim_input_gives_zero():
    assert torch.tensor(3.0).log_softmax(0).item() == 0.0


def test_integer_input_is_refused_by_the_op():
    with pytest.raises(RuntimeError, match="log_softmax: expected a floating-point tensor, got int64"):
        OPS["log_softmax"].infer(torch.tensor([1, 2])._type(), dim=0)


@pytest.mark.parametrize("shape", [(64, 10), (3, 1), (5, 33)])
def test_library_kernel_matches_the_reference(shape):
    x = (RNG.standard_normal(shape) * 5).astype(np.float32)
    x[0, 0] = np.nan if shape[0] > 2 else x[0, 0]
    out = np.empty_like(x)
    softmax.log_softmax_rows(x, out)
    np.testing.assert_allclose(out, OPS["log_softmax"].impl(x, dim=1), rtol=2e-6, atol=2e-6, equal_nan=True)


def test_compiled_label_smoothed_cross_entropy_uses_one_log_softmax_step():
    import graphnet.nn.functional as F

    f = torch.compile(lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1))
    a, b = torch.randn(16, 10), torch.randint(0, 10, (16,))
    for _ in range(2):
        np.testing.assert_allclose(f(a, b).item(), F.cross_entropy(a, b, label_smoothing=0.1).item(), rtol=1e-6)
    ops = [n.op for n in f.graph("optimized").nodes]
    assert ops.count("log_softmax") == 1
