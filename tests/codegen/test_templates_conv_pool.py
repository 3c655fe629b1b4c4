"""Library kernels (conv2d, pooling) vs the NumPy reference implementations of the same ops."""
import numpy as np
import pytest

from graphnet.codegen.templates import conv, pool
from graphnet.ir.ops import OPS

RNG = np.random.default_rng(0)
CONV_CASES = [  # (N, C, H, W), (O, kh, kw), stride, padding, dilation, groups
    ((2, 1, 9, 8), (3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
    ((3, 4, 7, 10), (6, 3, 2), (2, 1), (1, 2), (1, 2), 2),
    ((1, 3, 6, 6), (3, 1, 1), (1, 1), (0, 0), (1, 1), 3),
    ((2, 2, 11, 9), (4, 5, 5), (3, 2), (2, 2), (2, 1), 1),
]


def _out_hw(h, w, k, s, p, d):
    return tuple((size + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, size in enumerate((h, w)))


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_conv2d_kernels_match_reference(xs, ws, stride, padding, dilation, groups):
    n, c, h, w = xs
    o, kh, kw = ws
    x = RNG.standard_normal(xs).astype(np.float32)
    weight = RNG.standard_normal((o, c // groups, kh, kw)).astype(np.float32)
    bias = RNG.standard_normal(o).astype(np.float32)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    oh, ow = _out_hw(h, w, (kh, kw), stride, padding, dilation)
    cols = np.empty((c * kh * kw, n * oh * ow), np.float32)
    tmp = np.empty((o, n * oh * ow), np.float32)
    out = np.empty((n, o, oh, ow), np.float32)
    conv.conv2d_forward(x, weight, bias, True, True, *stride, *padding, *dilation, groups, cols, tmp, out)
    ref = OPS["conv2d"].impl(x, weight, **attrs) + bias.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(out, np.maximum(ref, 0), rtol=1e-4, atol=1e-4)

    g = RNG.standard_normal((n, o, oh, ow)).astype(np.float32)
    dw = np.empty_like(weight)
    conv.conv2d_weight_grad(g, cols, groups, tmp, dw)
    np.testing.assert_allclose(dw, OPS["conv2d_weight_grad"].impl(x, g, weight_shape=weight.shape, **attrs),
                               rtol=1e-4, atol=1e-3)
    dx = np.empty_like(x)
    conv.conv2d_input_grad(g, weight, *stride, *padding, *dilation, groups, tmp, np.empty_like(cols), dx)
    np.testing.assert_allclose(dx, OPS["conv2d_input_grad"].impl(g, weight, input_shape=x.shape, **attrs),
                               rtol=1e-4, atol=1e-3)


POOL_CASES = [((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1)), ((1, 2, 7, 9), (3, 2), (2, 1), (1, 1), (1, 1)),
              ((2, 1, 10, 10), (3, 3), (1, 2), (1, 0), (2, 1))]


@pytest.mark.parametrize("xs,k,s,p,d", POOL_CASES)
def test_max_pool_kernels_match_reference(xs, k, s, p, d):
    x = RNG.standard_normal(xs).astype(np.float32)
    ref, ref_idx = OPS["max_pool2d"].impl(x, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=False)
    out, idx = np.empty(ref.shape, np.float32), np.empty(ref.shape, np.int64)
    pool.max_pool2d_forward(x, *k, *s, *p, *d, out, idx)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    g = RNG.standard_normal(ref.shape).astype(np.float32)
    dx = np.empty_like(x)
    pool.max_pool2d_backward(g, idx, dx)
    np.testing.assert_allclose(dx, OPS["max_pool2d_backward"].impl(g, ref_idx, input_shape=x.shape), rtol=1e-6)


@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("xs,k,s,p", [((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)), ((1, 2, 7, 9), (3, 3), (2, 1), (1, 1))])
def test_avg_pool_kernels_match_reference(xs, k, s, p, include_pad):
    x = RNG.standard_normal(xs).astype(np.float32)
    attrs = dict(kernel_size=k, stride=s, padding=p, ceil_mode=False, count_include_pad=include_pad,
                 divisor_override=None)
    ref = OPS["avg_pool2d"].impl(x, **attrs)
    out = np.empty(ref.shape, np.float32)
    pool.avg_pool2d_forward(x, *k, *s, *p, include_pad, 0, out)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    g = RNG.standard_normal(ref.shape).astype(np.float32)
    dx = np.empty_like(x)
    pool.avg_pool2d_backward(g, *k, *s, *p, include_pad, 0, dx)
    np.testing.assert_allclose(dx, OPS["avg_pool2d_backward"].impl(g, input_shape=x.shape, **attrs), rtol=1e-5,
                               atol=1e-6)
