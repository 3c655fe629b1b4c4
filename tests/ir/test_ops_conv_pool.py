"""conv2d, max_pool2d, avg_pool2d primitives and their backward primitives: values against direct-loop references,
gradients against finite differences (float64), and every error path."""
import math

import numpy as np
import pytest

import graphnet as torch
from graphnet.autograd import gradcheck
from graphnet.core.bind import bind
from graphnet.ir.ops import OpError

# ---- direct loop references (tiny shapes only) -------------------------------------------------------------------


def ref_conv2d(x, w, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, ho, wo))
    for b in range(n):
        for oc in range(o):
            first = (oc // (o // groups)) * cg
            for i in range(ho):
                for j in range(wo):
                    for ci in range(cg):
                        for a in range(kh):
                            for e in range(kw):
                                r = i * stride[0] + a * dilation[0] - padding[0]
                                q = j * stride[1] + e * dilation[1] - padding[1]
                                if 0 <= r < h and 0 <= q < wd:
                                    out[b, oc, i, j] += x[b, first + ci, r, q] * w[oc, ci, a, e]
    return out


def ref_pool_size(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    return out - 1 if ceil_mode and (out - 1) * s >= size + p else out


def ref_windows(h, w, k, s, p, d, ceil_mode):
    """For each output cell: the list of (row, col) window positions, in kernel order (may lie in the padding)."""
    ho, wo = (ref_pool_size(h, k[0], s[0], p[0], d[0], ceil_mode), ref_pool_size(w, k[1], s[1], p[1], d[1], ceil_mode))
    return {(i, j): [(i * s[0] + a * d[0] - p[0], j * s[1] + e * d[1] - p[1]) for a in range(k[0]) for e in range(k[1])]
            for i in range(ho) for j in range(wo)}, (ho, wo)


def ref_max_pool(x, k, s, p, d, ceil_mode):
    planes = x.reshape(-1, *x.shape[-2:])
    h, w = planes.shape[1:]
    cells, (ho, wo) = ref_windows(h, w, k, s, p, d, ceil_mode)
    vals, idx = np.zeros((len(planes), ho, wo)), np.zeros((len(planes), ho, wo), dtype=np.int64)
    for n, plane in enumerate(planes):
        for (i, j), taps in cells.items():
            best = -math.inf
            for r, q in taps:
                if 0 <= r < h and 0 <= q < w and plane[r, q] > best:
                    best, idx[n, i, j] = plane[r, q], r * w + q
            vals[n, i, j] = best
    return vals.reshape(x.shape[:-2] + (ho, wo)), idx.reshape(x.shape[:-2] + (ho, wo))


def ref_avg_pool(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    planes = x.reshape(-1, *x.shape[-2:])
    h, w = planes.shape[1:]
    cells, (ho, wo) = ref_windows(h, w, k, s, p, (1, 1), ceil_mode)
    out = np.zeros((len(planes), ho, wo))
    for n, plane in enumerate(planes):
        for (i, j), taps in cells.items():
            real = [(r, q) for r, q in taps if 0 <= r < h and 0 <= q < w]
            inside_pad = [(r, q) for r, q in taps if r < h + p[0] and q < w + p[1]]
            div = divisor_override or (len(inside_pad) if count_include_pad else len(real))
            out[n, i, j] = sum(plane[r, q] for r, q in real) / div
    return out.reshape(x.shape[:-2] + (ho, wo))


# ---- helpers ------------------------------------------------------------------------------------------------------


def _t(shape, grad=False, dtype=np.float64, seed=0):
    return torch.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=grad)


def conv(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    return bind("conv2d", x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)


def max_pool(x, kernel_size, stride=None, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    return bind("max_pool2d", x, kernel_size=kernel_size, stride=stride or kernel_size, padding=padding,
                dilation=dilation, ceil_mode=ceil_mode)


def avg_pool(x, kernel_size, stride=None, padding=(0, 0), ceil_mode=False, count_include_pad=True,
             divisor_override=None):
    return bind("avg_pool2d", x, kernel_size=kernel_size, stride=stride or kernel_size, padding=padding,
                ceil_mode=ceil_mode, count_include_pad=count_include_pad, divisor_override=divisor_override)


# (x shape, w shape, stride, padding, dilation, groups)
CONV_CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
    ((1, 2, 7, 8), (3, 2, 2, 3), (2, 1), (1, 2), (1, 1), 1),     # non-square kernel, stride, padding
    ((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 2), (2, 1), 2),     # groups and dilation
    ((1, 4, 5, 5), (4, 1, 3, 3), (1, 2), (1, 1), (1, 2), 4),     # depthwise
    ((2, 1, 9, 5), (2, 1, 1, 1), (3, 2), (0, 0), (1, 1), 1),     # 1x1, stride larger than kernel
    ((1, 2, 4, 4), (2, 2, 4, 4), (1, 1), (0, 0), (1, 1), 1),     # kernel == input
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_conv2d_matches_direct_loops(xs, ws, stride, padding, dilation, groups):
    x, w = _t(xs), _t(ws, seed=1)
    got = conv(x, w, stride, padding, dilation, groups)
    np.testing.assert_allclose(got.numpy(), ref_conv2d(x.numpy(), w.numpy(), stride, padding, dilation, groups),
                               rtol=1e-10, atol=1e-12)


def test_conv2d_float32_stays_float32():
    x, w = _t((2, 3, 8, 8), dtype=np.float32), _t((4, 3, 3, 3), dtype=np.float32, seed=1)
    got = conv(x, w, padding=(1, 1))
    assert got.dtype is torch.float32
    np.testing.assert_allclose(got.numpy(), ref_conv2d(x.numpy(), w.numpy(), (1, 1), (1, 1), (1, 1), 1), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_conv2d_gradcheck(xs, ws, stride, padding, dilation, groups):
    x, w = _t(xs, grad=True), _t(ws, grad=True, seed=1)
    assert gradcheck(lambda a, b: conv(a, b, stride, padding, dilation, groups), (x, w))


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[2]])
def test_conv2d_backward_primitives_are_differentiable(case):
    """Double backward: the input- and weight-gradient primitives have exact (bilinear) gradient rules."""
    xs, ws, stride, padding, dilation, groups = case
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x, w = _t(xs, grad=True), _t(ws, grad=True, seed=1)
    g = _t(tuple(conv(x, w, **attrs).shape), grad=True, seed=2)
    assert gradcheck(lambda gg, ww: bind("conv2d_input_grad", gg, ww, input_shape=xs, **attrs), (g, w))
    assert gradcheck(lambda xx, gg: bind("conv2d_weight_grad", xx, gg, weight_shape=ws, **attrs), (x, g))


def test_conv2d_only_weight_needs_grad():
    x, w = _t((2, 3, 6, 6)), _t((4, 3, 3, 3), grad=True, seed=1)
    conv(x, w, padding=(1, 1)).sum().backward()
    assert x.grad is None and tuple(w.grad.shape) == (4, 3, 3, 3)


# (input shape, kernel, stride, padding, dilation, ceil_mode)
POOL_CASES = [
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((1, 2, 7, 5), (3, 2), (2, 1), (1, 1), (1, 1), False),
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 0), (1, 1), True),        # ceil_mode keeps a partial last window
    ((2, 5, 5), (2, 2), (2, 2), (0, 0), (1, 1), True),           # 3-D input, ceil mode
    ((1, 1, 9, 8), (2, 3), (1, 2), (1, 1), (2, 2), False),       # dilation, overlapping windows
    ((1, 1, 4, 5), (2, 2), (3, 3), (1, 1), (1, 1), True),        # ceil_mode drops a window starting in the padding
]


@pytest.mark.parametrize("xs,k,s,p,d,ceil", POOL_CASES)
def test_max_pool_matches_direct_loops(xs, k, s, p, d, ceil):
    x = _t(xs)
    values, indices = max_pool(x, k, s, p, d, ceil)
    want_v, want_i = ref_max_pool(x.numpy(), k, s, p, d, ceil)
    np.testing.assert_array_equal(values.numpy(), want_v)
    np.testing.assert_array_equal(indices.numpy(), want_i)
    assert indices.dtype is torch.int64 and not indices.requires_grad


def test_max_pool_ties_pick_first_and_nan_wins():
    x = torch.tensor(np.ones((1, 1, 4, 4)))
    _, idx = max_pool(x, (2, 2))
    assert idx.numpy().ravel().tolist() == [0, 2, 8, 10]
    y = np.arange(16.0).reshape(1, 1, 4, 4)
    y[0, 0, 0, 0] = np.nan
    vals, idx = max_pool(torch.tensor(y), (2, 2))
    assert np.isnan(vals.numpy()[0, 0, 0, 0]) and idx.numpy()[0, 0, 0, 0] == 0


@pytest.mark.parametrize("xs,k,s,p,d,ceil", POOL_CASES)
def test_max_pool_gradcheck(xs, k, s, p, d, ceil):
    x = _t(xs, grad=True)
    assert gradcheck(lambda a: max_pool(a, k, s, p, d, ceil)[0], (x,))


# (input shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 0), False, True, None),
    ((1, 2, 7, 5), (3, 2), (2, 1), (1, 1), False, True, None),
    ((1, 2, 7, 5), (3, 2), (2, 1), (1, 1), False, False, None),
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1), True, True, None),      # ceil window crosses the right padding edge
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1), True, False, None),
    ((2, 5, 6), (2, 3), (1, 2), (1, 1), False, True, 5),          # divisor_override, 3-D input
    ((1, 1, 4, 5), (2, 2), (3, 3), (1, 1), True, True, None),      # ceil_mode drops a window starting in the padding
]


@pytest.mark.parametrize("xs,k,s,p,ceil,cip,div", AVG_CASES)
def test_avg_pool_matches_direct_loops(xs, k, s, p, ceil, cip, div):
    x = _t(xs)
    got = avg_pool(x, k, s, p, ceil, cip, div)
    np.testing.assert_allclose(got.numpy(), ref_avg_pool(x.numpy(), k, s, p, ceil, cip, div), rtol=1e-12)


@pytest.mark.parametrize("xs,k,s,p,ceil,cip,div", AVG_CASES)
def test_avg_pool_gradcheck(xs, k, s, p, ceil, cip, div):
    x = _t(xs, grad=True)
    assert gradcheck(lambda a: avg_pool(a, k, s, p, ceil, cip, div), (x,))


def test_avg_pool_backward_is_differentiable():
    xs, attrs = (1, 2, 7, 7), dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True,
                                   count_include_pad=False, divisor_override=None)
    g = _t(tuple(bind("avg_pool2d", _t(xs), **attrs).shape), grad=True)
    assert gradcheck(lambda gg: bind("avg_pool2d_backward", gg, input_shape=xs, **attrs), (g,))


def test_lenet_shapes_forward_backward():
    x = _t((4, 1, 32, 32), dtype=np.float32)
    w1, w2 = _t((6, 1, 5, 5), True, np.float32, 1), _t((16, 6, 5, 5), True, np.float32, 2)
    h = max_pool(conv(x, w1), (2, 2))[0]
    h = max_pool(conv(h, w2), (2, 2))[0]
    assert tuple(h.shape) == (4, 16, 5, 5) and h.dtype is torch.float32
    h.sum().backward()
    assert w1.grad.dtype is torch.float32 and tuple(w2.grad.shape) == (16, 6, 5, 5)


def test_empty_batch_forward_and_backward():
    x, w = _t((0, 2, 6, 6), grad=True), _t((3, 2, 3, 3), grad=True, seed=1)
    h = conv(x, w, padding=(1, 1))
    pooled = max_pool(h, (2, 2))[0] + avg_pool(h, (2, 2))
    assert tuple(pooled.shape) == (0, 3, 3, 3)
    pooled.sum().backward()
    assert tuple(x.grad.shape) == (0, 2, 6, 6) and np.array_equal(w.grad.numpy(), np.zeros((3, 2, 3, 3)))


# ---- error paths ---------------------------------------------------------------------------------------------------
CONV_ERRORS = [
    (lambda: conv(_t((1, 32, 32)), _t((6, 1, 5, 5))),
     r"conv2d: expected input with 4 dims \(N, C, H, W\), got shape \(1, 32, 32\)"),
    (lambda: conv(_t((1, 1, 8, 8)), _t((6, 5, 5))), r"conv2d: expected weight with 4 dims"),
    (lambda: conv(_t((2, 3, 8, 8)), _t((6, 1, 5, 5))),
     r"^Given groups=1, weight of size \[6, 1, 5, 5\], expected input\[2, 3, 8, 8\] to have 1 channels, but got 3 "
     r"channels instead$"),
    (lambda: conv(_t((1, 4, 8, 8)), _t((3, 2, 3, 3)), groups=2),
     r"^Given groups=2, expected weight to be divisible by 2 at dimension 0, but got weight of size "
     r"\[\[3, 2, 3, 3\]\] instead$"),
    (lambda: conv(_t((1, 4, 8, 8)), _t((4, 1, 3, 3)), groups=2),
     r"^Given groups=2, weight of size \[4, 1, 3, 3\], expected input\[1, 4, 8, 8\] to have 2 channels, but got 4 "
     r"channels instead$"),
    (lambda: conv(_t((1, 1, 4, 4)), _t((1, 1, 5, 5))),
     r"^Calculated padded input size per channel: \(4 x 4\). Kernel size: \(5 x 5\). Kernel size can't be "
     r"greater than actual input size$"),
    (lambda: conv(_t((1, 1, 5, 5)), _t((1, 1, 3, 3)), dilation=(3, 1)), r"Kernel size: \(7 x 3\)"),
    (lambda: conv(_t((1, 1, 5, 5)), _t((1, 1, 3, 3), dtype=np.float32)),
     r"conv2d: Input type \(float64\) and weight type \(float32\) should be the same"),
    (lambda: conv(torch.ones(1, 1, 5, 5, dtype=torch.int64), torch.ones(1, 1, 3, 3, dtype=torch.int64)),
     r"conv2d: expected floating-point tensors, got int64"),
    (lambda: conv(_t((1, 1, 5, 5)), _t((1, 1, 3, 3)), stride=(0, 1)), r"conv2d: non-positive stride is not supported"),
    (lambda: conv(_t((1, 1, 5, 5)), _t((1, 1, 3, 3)), padding=(-1, 0)), r"conv2d: negative padding is not supported"),
    (lambda: conv(_t((1, 1, 5, 5)), _t((1, 1, 3, 3)), dilation=(1, 0)), r"conv2d: dilation should be greater than"),
    (lambda: conv(_t((1, 1, 5, 5)), _t((1, 1, 3, 3)), groups=0), r"conv2d: non-positive groups is not supported"),
    (lambda: conv(_t((1, 1, 5, 5)), _t((1, 1, 3, 3)), stride=1), r"conv2d: stride must be a tuple of 2 ints, got 1"),
    (lambda: bind("conv2d_input_grad", _t((1, 1, 2, 2)), _t((1, 1, 3, 3)), input_shape=(1, 1, 5, 5), stride=(1, 1),
                  padding=(0, 0), dilation=(1, 1), groups=1),
     r"conv2d_input_grad: grad_output shape \(1, 1, 2, 2\) does not match the conv2d output shape \(1, 1, 3, 3\)"),
    (lambda: bind("conv2d_weight_grad", _t((1, 1, 5, 5)), _t((1, 1, 2, 2)), weight_shape=(1, 1, 3, 3), stride=(1, 1),
                  padding=(0, 0), dilation=(1, 1), groups=1), r"conv2d_weight_grad: grad_output shape \(1, 1, 2, 2\)"),
]

POOL_ERRORS = [
    (lambda: max_pool(_t((1, 2, 2)), (3, 3), (1, 1)),
     r"max_pool2d: Given input size: \(1x2x2\). Calculated output size: \(1x0x0\). Output size is too small"),
    (lambda: max_pool(_t((1, 1, 6, 6)), (2, 2), (2, 2), (2, 2)),
     r"max_pool2d: pad should be at most half of effective kernel size, but got pad=2, kernel_size=2 and dilation=1"),
    (lambda: max_pool(_t((1, 1, 9, 9)), (2, 2), (1, 1), (2, 2), (3, 3)),
     r"max_pool2d: pad should be smaller than or equal to half of kernel size, but got padW = 2, padH = 2, kW = 2"),
    (lambda: max_pool(_t((6, 6)), (2, 2)),
     r"max_pool2d: Expected 3D or 4D \(batch mode\) tensor with optional 0 dim batch size for input, but got: "
     r"\(6, 6\)"),
    (lambda: max_pool(_t((1, 1, 6, 6)), (0, 2), (1, 1)), r"kernel size should be greater than zero, but got kH: 0"),
    (lambda: max_pool(_t((1, 1, 6, 6)), (2, 2), (0, 1)), r"stride should be greater than zero, but got dH: 0 dW: 1"),
    (lambda: max_pool(_t((1, 1, 6, 6)), (2, 2), (2, 2), (0, 0), (0, 1)), r"dilation should be greater than zero"),
    (lambda: max_pool(_t((1, 1, 6, 6)), (2, 2), (2, 2), (-1, 0)), r"max_pool2d: pad must be non-negative"),
    (lambda: max_pool(torch.ones(1, 1, 4, 4, dtype=torch.int64), (2, 2)), r"max_pool2d: expected a floating-point"),
    (lambda: max_pool(_t((1, 1, 4, 4)), [2, 2]), r"max_pool2d: kernel_size must be a tuple of 2 ints"),
    (lambda: avg_pool(_t((1, 1, 6, 6)), (2, 2), divisor_override=0), r"avg_pool2d: divisor must be not zero"),
    (lambda: avg_pool(_t((1, 1, 6, 6)), (3, 3), (1, 1), (2, 2)), r"avg_pool2d: pad should be at most half"),
    (lambda: avg_pool(_t((1, 1, 2, 2)), (3, 3), (1, 1)), r"avg_pool2d: Given input size: \(1x2x2\)"),
    (lambda: bind("max_pool2d_backward", _t((1, 1, 2, 2)), torch.zeros(1, 1, 3, 3, dtype=torch.int64),
                  input_shape=(1, 1, 4, 4)), r"max_pool2d_backward: grad_output \(1, 1, 2, 2\) and indices"),
    (lambda: bind("avg_pool2d_backward", _t((1, 1, 3, 3)), input_shape=(1, 1, 4, 4), kernel_size=(2, 2),
                  stride=(2, 2), padding=(0, 0)),
     r"avg_pool2d_backward: grad_output shape \(1, 1, 3, 3\) does not match the pooled shape \(1, 1, 2, 2\)"),
]


@pytest.mark.parametrize("fn,match", CONV_ERRORS + POOL_ERRORS)
def test_errors(fn, match):
    with pytest.raises(OpError, match=match):
        fn()
