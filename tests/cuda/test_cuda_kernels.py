"""Eager CUDA kernels vs the ops' NumPy impls (the oracle), with odd sizes that are not multiples of a block."""
import warnings

import numpy as np
import pytest

import graphnet
from graphnet.ir.ops import OPS
from graphnet.runtime import cuda_backend, storage
from graphnet.runtime.cuda_kernels import gemm

pytestmark = pytest.mark.cuda
RNG = np.random.default_rng(0)


def _rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _check(name, arrays, rtol=1e-5, atol=1e-6, **attrs):
    """Run op `name` on CUDA tensors and compare every output with its impl on the host arrays."""
    from graphnet.core.bind import bind

    out = bind(name, *(graphnet.tensor(a).cuda() for a in arrays), **attrs)
    ref = OPS[name].impl(*arrays, **attrs)
    for o, r in zip(out if isinstance(out, tuple) else (out,), ref if isinstance(ref, tuple) else (ref,)):
        assert o.is_cuda
        np.testing.assert_allclose(o.cpu().numpy(), r, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name, shapes", [("add", [(5, 37), (37,)]), ("mul", [(3, 1, 7), (4, 1)]),
                                          ("sub", [(33,), ()]), ("div", [(2, 3, 5), (2, 1, 5)]),
                                          ("maximum", [(9, 4), (9, 1)]), ("pow", [(6,), (6,)])])
def test_binary_broadcasting(name, shapes):
    arrays = [np.abs(_rand(*s)) + 0.5 if name == "pow" else _rand(*s) for s in shapes]
    _check(name, arrays)


@pytest.mark.parametrize("name", ["neg", "abs", "exp", "tanh", "sigmoid", "relu", "sqrt", "sign", "floor", "sin",
                                  "expm1", "log1p", "log2", "log10"])
def test_unary(name):
    x = _rand(41)
    _check(name, [np.abs(x) + (0.01 if name.startswith("log") else 0) if name in ("sqrt", "log1p", "log2", "log10")
                  else x], rtol=2e-6)


def test_compare_where_cast_clamp():
    a, b = _rand(7, 3), _rand(3)
    _check("gt", [a, b])
    _check("where", [a > 0, a, b])
    _check("cast", [a], dtype=graphnet.int32)
    _check("clamp", [a], min=-0.5, max=0.25)
    _check("clamp", [a], min=0.0)
    a[1, 2] = np.nan
    _check("clamp", [a], min=-0.5, max=0.25)  # NaN stays NaN (assert_allclose matches NaN positions)
    _check("clamp", [a], max=0.0)


def test_elementwise_kernel_is_compiled_once_per_pattern():
    x = graphnet.randn(5, 6, device="cuda")
    x + x
    before = len(cuda_backend._KERNELS)
    graphnet.randn(7, 2, device="cuda") + graphnet.randn(7, 2, device="cuda")  # other shape, same rank pattern
    assert len(cuda_backend._KERNELS) == before


@pytest.mark.parametrize("shape, dims", [((3, 37, 5), 0), ((3, 37, 5), 1), ((3, 37, 5), 2), ((3, 37, 5), (0, 2)),
                                         ((3, 37, 5), None), ((2, 101), 1), ((67, 3), 0)])
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "prod"])
def test_reductions_over_each_dim(name, shape, dims):
    """Short reductions run a thread per output; long ones (101, 555, 67 > 64) a block tree over shared memory."""
    x = _rand(*shape) * (0.9 if name == "prod" else 1)
    _check(name, [x], rtol=1e-4, dims=dims, keepdim=dims == 1)


def test_integer_sum_and_sum_to():
    _check("sum", [RNG.integers(-5, 5, (4, 35)).astype(np.int32)], dims=1)
    _check("sum_to", [_rand(4, 3, 6)], shape=(3, 1), rtol=1e-5)


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (5, 3, 7), (17, 9, 11), (4, 20, 3)])
def test_gemm_odd_sizes_with_bias_relu_epilogue(m, k, n):
    a, b, bias = _rand(m, k), _rand(k, n), _rand(n)
    out = gemm.matmul2d(storage.to_device(a), storage.to_device(b), storage.to_device(bias), relu=True)
    np.testing.assert_allclose(storage.to_host(out), np.maximum(a @ b + bias, 0), rtol=1e-5, atol=1e-5)
    plain = gemm.matmul2d(storage.to_device(a), storage.to_device(b))
    np.testing.assert_allclose(storage.to_host(plain), a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sa, sb", [((2, 5, 3), (2, 3, 4)), ((2, 1, 5, 3), (3, 4)), ((6, 3), (2, 3, 2))])
def test_batched_matmul(sa, sb):
    _check("matmul", [_rand(*sa), _rand(*sb)], rtol=1e-5, atol=1e-5)


CONV = [dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1),
        dict(stride=(2, 1), padding=(1, 2), dilation=(1, 1), groups=1),
        dict(stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=2)]


@pytest.mark.parametrize("attrs", CONV)
def test_conv2d_forward_and_grads(attrs):
    x, w = _rand(2, 2, 6, 5), _rand(4, 2 // attrs["groups"], 3, 2)
    _check("conv2d", [x, w], rtol=1e-4, atol=1e-5, **attrs)
    g = OPS["conv2d"].impl(x, w, **attrs)
    g = _rand(*g.shape)
    _check("conv2d_input_grad", [g, w], rtol=1e-4, atol=1e-5, input_shape=x.shape, **attrs)
    _check("conv2d_weight_grad", [x, g], rtol=1e-4, atol=1e-5, weight_shape=w.shape, **attrs)


@pytest.mark.parametrize("k, s, p, ceil", [((2, 2), (2, 2), (0, 0), False), ((3, 2), (2, 1), (1, 1), True)])
def test_max_pool_forward_backward(k, s, p, ceil):
    x = _rand(2, 3, 7, 5)
    attrs = dict(kernel_size=k, stride=s, padding=p, dilation=(1, 1), ceil_mode=ceil)
    _check("max_pool2d", [x], **attrs)
    out, idx = OPS["max_pool2d"].impl(x, **attrs)
    _check("max_pool2d_backward", [_rand(*out.shape), idx], input_shape=x.shape)


@pytest.mark.parametrize("pad, include, override", [((0, 0), True, None), ((1, 1), False, None), ((1, 0), True, 3)])
def test_avg_pool_forward_backward(pad, include, override):
    x = _rand(2, 2, 7, 6)
    attrs = dict(kernel_size=(3, 2), stride=(2, 2), padding=pad, ceil_mode=True, count_include_pad=include,
                 divisor_override=override)
    _check("avg_pool2d", [x], **attrs)
    out = OPS["avg_pool2d"].impl(x, **attrs)
    _check("avg_pool2d_backward", [_rand(*out.shape)], input_shape=x.shape, **attrs)


def test_movement_ops_as_device_copies():
    x = _rand(3, 4, 5)
    _check("permute", [x], dims=(2, 0, 1))
    _check("expand", [_rand(3, 1)], shape=(2, 3, 4))
    _check("getitem", [x], index=(("int", 1), ("slice", 3, None, -1 + 2), ("slice", None, None, 2)))
    _check("flip", [x], dims=(0, 2))
    _check("cat", [x, _rand(3, 2, 5)], dim=1)
    _check("pad", [x], pad=(1, 2, 0, 1), value=1.5)
    _check("getitem_backward", [_rand(2, 5)], shape=(3, 4, 5), index=(("slice", 1, 3, 1), ("int", 2)))
    _check("reshape", [x], shape=(12, 5))


def test_op_without_kernel_falls_back_to_host_with_one_warning(monkeypatch):
    monkeypatch.delitem(cuda_backend.HANDLERS, "argmax")  # every op has a kernel now: take one away
    cuda_backend.FALLBACKS.pop("argmax", None)
    x = _rand(4, 9)
    with pytest.warns(RuntimeWarning, match="op 'argmax' has no device kernel yet"):
        _check("argmax", [x], dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check("argmax", [x], dim=0)
    assert graphnet.cuda.fallback_counts()["argmax"] == 2


def test_tiny_mlp_gradients_match_cpu():
    graphnet.manual_seed(0)
    net = graphnet.nn.Sequential(graphnet.nn.Linear(5, 7), graphnet.nn.ReLU(), graphnet.nn.Linear(7, 3))
    x, y = graphnet.randn(6, 5), graphnet.tensor([0, 2, 1, 1, 0, 2])
    grads = []
    for dev in ("cpu", "cuda"):
        net.zero_grad()
        model = net.to(dev)
        loss = graphnet.nn.functional.cross_entropy(model(x.to(dev)), y.to(dev))
        loss.backward()
        grads.append([p.grad.cpu().numpy().copy() for p in model.parameters()])
    for cpu_g, gpu_g in zip(*grads):
        np.testing.assert_allclose(gpu_g, cpu_g, rtol=1e-4, atol=1e-6)


def test_conv_net_gradients_match_cpu():
    x = graphnet.randn(2, 2, 6, 6, dtype=graphnet.float64)
    w = graphnet.randn(3, 2, 3, 3, dtype=graphnet.float64)
    grads = []
    for dev in ("cpu", "cuda"):
        xd, wd = x.to(dev).detach().requires_grad_(), w.to(dev).detach().requires_grad_()
        out = graphnet.nn.functional.max_pool2d(graphnet.nn.functional.conv2d(xd, wd, padding=1).relu(), 2)
        (out * out).sum().backward()
        grads.append((xd.grad.cpu().numpy(), wd.grad.cpu().numpy()))
    for cpu_g, gpu_g in zip(*grads):
        np.testing.assert_allclose(gpu_g, cpu_g, rtol=1e-9, atol=1e-10)
