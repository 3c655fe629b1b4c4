"""Convolution and pooling primitives: NumPy reference impls (strided windows + one BLAS GEMM per group) and their
backward primitives. All spatial attrs are int tuples of length 2, as graphnet.nn.functional passes them.

Double backward: the conv backward primitives and avg_pool2d_backward are linear, so their own gradient rules are
exact (conv2d / conv2d_*_grad / avg_pool2d); max_pool2d_backward has none (its adjoint is a gather by index).
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...core import dtype as dt
from ...core.bind import op
from ...core.opdef import OpDef, OpError, register
from .util import fmt_shape

# ---- shared geometry ---------------------------------------------------------------------------------------------


def _check_pairs(opname, **pairs):
    for name, v in pairs.items():
        if not (isinstance(v, tuple) and len(v) == 2 and all(isinstance(i, (int, np.integer)) for i in v)):
            raise OpError(f"{opname}: {name} must be a tuple of 2 ints, got {v!r}")


def _out_size(size, k, s, p, d, ceil_mode=False):
    """PyTorch's pooling_output_shape (convolutions use ceil_mode=False)."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _extent(size, out, k, s, p, d):
    """Rows a padded buffer needs: every window tap, and the whole (left-padded) input."""
    return max((out - 1) * s + d * (k - 1) + 1, size + p)


def _padded(x, pad, shape, value):
    """x (..., H, W) placed at offset `pad` inside a new (..., *shape) array filled with `value`."""
    (ph, pw), (h, w) = pad, x.shape[-2:]
    if pad == (0, 0) and tuple(shape) == (h, w):
        return x
    out = np.full(x.shape[:-2] + tuple(shape), value, dtype=x.dtype)
    out[..., ph:ph + h, pw:pw + w] = x[..., :shape[0] - ph, :shape[1] - pw]
    return out


def _windows(xp, out_hw, k, s, d):
    """Read-only strided view (..., Ho, Wo, kh, kw) of a padded (..., Hp, Wp) array: no copy."""
    *lead, s_h, s_w = xp.strides
    strides = tuple(lead) + (s_h * s[0], s_w * s[1], s_h * d[0], s_w * d[1])
    return as_strided(xp, xp.shape[:-2] + tuple(out_hw) + tuple(k), strides, writeable=False)


def _scatter_windows(dst, taps, out_hw, s, d):
    """Adjoint of `_windows`: dst (..., Hp, Wp) += taps[i, j] (..., Ho, Wo) at every kernel tap (i, j)."""
    (ho, wo), (kh, kw) = out_hw, taps.shape[:2]
    for i in range(kh):
        for j in range(kw):
            dst[..., i * d[0]:i * d[0] + s[0] * (ho - 1) + 1:s[0], j * d[1]:j * d[1] + s[1] * (wo - 1) + 1:s[1]] += \
                taps[i, j]
    return dst


def _buffer_shape(in_hw, out_hw, k, s, p, d):
    return tuple(_extent(in_hw[a], out_hw[a], k[a], s[a], p[a], d[a]) for a in range(2))


# ---- conv2d ------------------------------------------------------------------------------------------------------


def check_conv(x_shape, w_shape, groups, padding=None, dilation=None):
    """PyTorch's conv shape checks, worded as PyTorch words them, for any number of spatial dims (conv1d checks
    its 3-d shapes before running as conv2d); padding=None skips the kernel-size check."""
    o, cg = w_shape[0], w_shape[1]
    if o % groups:
        raise OpError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got "
                      f"weight of size [{list(w_shape)}] instead")
    if x_shape[1] != cg * groups:
        raise OpError(f"Given groups={groups}, weight of size {list(w_shape)}, expected input{list(x_shape)} to have "
                      f"{cg * groups} channels, but got {x_shape[1]} channels instead")
    if padding is None:
        return
    padded = [size + 2 * p for size, p in zip(x_shape[2:], padding)]
    kernel = [d * (k - 1) + 1 for k, d in zip(w_shape[2:], dilation)]
    if any(p < k for p, k in zip(padded, kernel)):
        raise OpError(f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). Kernel size: "
                      f"({' x '.join(map(str, kernel))}). Kernel size can't be greater than actual input size")


def _conv_infer(x, w, stride, padding, dilation, groups):
    """(N, C, H, W) * (O, C/groups, kh, kw) -> (N, O, Ho, Wo), with PyTorch's checks and messages."""
    _check_pairs("conv2d", stride=stride, padding=padding, dilation=dilation)
    shapes = f"input shape {fmt_shape(x.shape)}, weight shape {fmt_shape(w.shape)}"
    if x.ndim != 4:
        raise OpError(f"conv2d: expected input with 4 dims (N, C, H, W), got shape {fmt_shape(x.shape)}")
    if w.ndim != 4:
        raise OpError(f"conv2d: expected weight with 4 dims (out_channels, in_channels/groups, kH, kW), got shape "
                      f"{fmt_shape(w.shape)}")
    if x.dtype is not w.dtype:
        raise OpError(f"conv2d: Input type ({x.dtype.name}) and weight type ({w.dtype.name}) should be the same "
                      f"({shapes})")
    if not x.dtype.is_floating_point:
        raise OpError(f"conv2d: expected floating-point tensors, got {x.dtype.name} ({shapes})")
    for bad, msg in ((min(stride) < 1, f"non-positive stride is not supported (stride={stride})"),
                     (min(padding) < 0, f"negative padding is not supported (padding={padding})"),
                     (min(dilation) < 1, f"dilation should be greater than zero (dilation={dilation})"),
                     (not isinstance(groups, (int, np.integer)) or groups < 1,
                      f"non-positive groups is not supported (groups={groups})")):
        if bad:
            raise OpError(f"conv2d: {msg}")
    check_conv(x.shape, w.shape, groups, padding, dilation)
    return x.with_(shape=(x.shape[0], w.shape[0]) + _conv_out_hw(x.shape[2:], w.shape[2:], stride, padding, dilation))


def _conv_out_hw(in_hw, k, stride, padding, dilation):
    return tuple(_out_size(in_hw[a], k[a], stride[a], padding[a], dilation[a]) for a in range(2))


def _im2col(x, k, out_hw, stride, padding, dilation, groups):
    """Per-sample columns (N, G, Cg*kh*kw, Ho*Wo) of a (N, C, H, W) input: one strided copy, no Python loop."""
    xp = _padded(x, padding, _buffer_shape(x.shape[2:], out_hw, k, stride, padding, dilation), 0)
    cols = _windows(xp, out_hw, k, stride, dilation).transpose(0, 1, 4, 5, 2, 3)  # (N, C, kh, kw, Ho, Wo)
    per_group = x.shape[1] // groups * k[0] * k[1]
    return np.ascontiguousarray(cols).reshape(x.shape[0], groups, per_group, out_hw[0] * out_hw[1])


def _per_group(a, groups):
    """(N, O, Ho, Wo) -> (N, G, O/G, Ho*Wo): a free reshape for contiguous arrays."""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, a.shape[2] * a.shape[3])


def _conv_impl(x, w, stride, padding, dilation, groups):
    """Batched BLAS GEMM W_g @ cols[n, g]; the (N, O, Ho*Wo) result is already in NCHW order."""
    out_hw = _conv_out_hw(x.shape[2:], w.shape[2:], stride, padding, dilation)
    cols = _im2col(x, w.shape[2:], out_hw, stride, padding, dilation, groups)
    wg = w.reshape(groups, w.shape[0] // groups, -1)
    return np.matmul(wg, cols).reshape((x.shape[0], w.shape[0]) + out_hw)


def _conv_input_grad_impl(g, w, input_shape, stride, padding, dilation, groups):
    """col2im of W_g^T @ g[n, g]: one batched GEMM, then kh*kw strided slice-adds into the padded input gradient."""
    (n, c, h, wd), (kh, kw), out_hw = input_shape, w.shape[2:], g.shape[2:]
    wg = w.reshape(groups, w.shape[0] // groups, -1).transpose(0, 2, 1)
    taps = np.matmul(wg, _per_group(g, groups)).reshape(n, c, kh, kw, *out_hw).transpose(2, 3, 0, 1, 4, 5)
    dst = np.zeros((n, c) + _buffer_shape((h, wd), out_hw, (kh, kw), stride, padding, dilation), dtype=g.dtype)
    _scatter_windows(dst, taps, out_hw, stride, dilation)
    return np.ascontiguousarray(dst[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd])


_WGRAD_CHUNK = 1 << 22  # elements of the per-sample partial products held at once by the weight gradient


def _conv_weight_grad_impl(x, g, weight_shape, stride, padding, dilation, groups):
    """sum_n g[n, g] @ cols[n, g]^T as batched GEMMs over sample chunks (one long-K GEMM is slower in OpenBLAS)."""
    cols = _im2col(x, weight_shape[2:], g.shape[2:], stride, padding, dilation, groups)
    gg = _per_group(g, groups)
    step = max(1, _WGRAD_CHUNK // max(1, int(np.prod(weight_shape))))
    out = np.zeros((groups, weight_shape[0] // groups, cols.shape[2]), dtype=g.dtype)
    for lo in range(0, x.shape[0], step):
        out += np.matmul(gg[lo:lo + step], cols[lo:lo + step].transpose(0, 1, 3, 2)).sum(axis=0)
    return out.reshape(weight_shape)


def _conv_grad_infer(opname, given):
    """infer for a conv backward primitive: `given` is the (input, weight) type pair the forward would have seen."""

    def infer(a, b, **attrs):
        shape_attr = "input_shape" if opname == "conv2d_input_grad" else "weight_shape"
        spec = attrs.pop(shape_attr)
        x, w, g = given(a, b, a.with_(shape=tuple(spec)))
        expected = _conv_infer(x, w, **attrs)
        if tuple(g.shape) != expected.shape:
            raise OpError(f"{opname}: grad_output shape {fmt_shape(g.shape)} does not match the conv2d output shape "
                          f"{fmt_shape(expected.shape)} for input {fmt_shape(x.shape)} and weight "
                          f"{fmt_shape(w.shape)}")
        return a.with_(shape=tuple(spec))

    return infer


def _conv_grad(c, g):
    x, w = c.inputs
    attrs = c.attrs
    gx = op.conv2d_input_grad(g, w, input_shape=c.in_types[0].shape, **attrs) if c.needs_input_grad[0] else None
    gw = op.conv2d_weight_grad(x, g, weight_shape=c.in_types[1].shape, **attrs) if c.needs_input_grad[1] else None
    return gx, gw


def _attrs_without(attrs, key):
    return {k: v for k, v in attrs.items() if k != key}


def _conv_input_grad_grad(c, gg):
    """input_grad(g, w) is bilinear: d/dg = conv2d(gg, w), d/dw = weight_grad(gg, g)."""
    g, w = c.inputs
    attrs = _attrs_without(c.attrs, "input_shape")
    return (op.conv2d(gg, w, **attrs) if c.needs_input_grad[0] else None,
            op.conv2d_weight_grad(gg, g, weight_shape=c.in_types[1].shape, **attrs) if c.needs_input_grad[1] else None)


def _conv_weight_grad_grad(c, gg):
    """weight_grad(x, g) is bilinear: d/dx = input_grad(g, gg), d/dg = conv2d(x, gg)."""
    x, g = c.inputs
    attrs = _attrs_without(c.attrs, "weight_shape")
    return (op.conv2d_input_grad(g, gg, input_shape=c.in_types[0].shape, **attrs) if c.needs_input_grad[0] else None,
            op.conv2d(x, gg, **attrs) if c.needs_input_grad[1] else None)


register(OpDef("conv2d", "conv", _conv_infer, _conv_impl, _conv_grad, save_inputs=(0, 1), kernel="conv2d"))
register(OpDef("conv2d_input_grad", "conv",
               _conv_grad_infer("conv2d_input_grad", lambda g, w, x: (x, w, g)),
               _conv_input_grad_impl, _conv_input_grad_grad, save_inputs=(0, 1), kernel="conv2d_input_grad"))
register(OpDef("conv2d_weight_grad", "conv",
               _conv_grad_infer("conv2d_weight_grad", lambda x, g, w: (x, w, g)),
               _conv_weight_grad_impl, _conv_weight_grad_grad, save_inputs=(0, 1), kernel="conv2d_weight_grad"))


# ---- pooling -----------------------------------------------------------------------------------------------------


def _pool_infer_shape(opname, t, kernel_size, stride, padding, dilation, ceil_mode):
    """(..., C, H, W) -> (..., C, Ho, Wo) for a 3-D or 4-D input, with PyTorch's checks in PyTorch's order."""
    _check_pairs(opname, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    if t.ndim not in (3, 4) or 0 in t.shape[-3:]:
        raise OpError(f"{opname}: Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, "
                      f"but got: {fmt_shape(t.shape)}")
    if not t.dtype.is_floating_point:
        raise OpError(f"{opname}: expected a floating-point input, got {t.dtype.name} (shape {fmt_shape(t.shape)})")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    checks = ((kh > 0 and kw > 0, f"kernel size should be greater than zero, but got kH: {kh} kW: {kw}"),
              (sh > 0 and sw > 0, f"stride should be greater than zero, but got dH: {sh} dW: {sw}"),
              (dh > 0 and dw > 0, f"dilation should be greater than zero, but got dilationH: {dh} dilationW: {dw}"),
              (ph >= 0 and pw >= 0, f"pad must be non-negative, but got padH: {ph} padW: {pw}"))
    checks += tuple((p <= (d * (k - 1) + 1) // 2, f"pad should be at most half of effective kernel size, but got "
                     f"pad={p}, kernel_size={k} and dilation={d}") for p, k, d in ((ph, kh, dh), (pw, kw, dw)))
    checks += ((kw // 2 >= pw and kh // 2 >= ph, f"pad should be smaller than or equal to half of kernel size, but "
                f"got padW = {pw}, padH = {ph}, kW = {kw}, kH = {kh}"),)
    for ok, msg in checks:
        if not ok:
            raise OpError(f"{opname}: {msg}")
    (c, h, w), out = t.shape[-3:], (_out_size(t.shape[-2], kh, sh, ph, dh, ceil_mode),
                                    _out_size(t.shape[-1], kw, sw, pw, dw, ceil_mode))
    if min(out) < 1:
        raise OpError(f"{opname}: Given input size: ({c}x{h}x{w}). Calculated output size: ({c}x{out[0]}x{out[1]}). "
                      f"Output size is too small")
    return t.shape[:-2] + out


def _planes(x):
    """Any (..., H, W) array as (P, H, W) planes."""
    return x.reshape((-1,) + tuple(x.shape[-2:]))


def _max_pool_infer(x, kernel_size, stride, padding, dilation, ceil_mode=False):
    shape = _pool_infer_shape("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    return x.with_(shape=shape), x.with_(shape=shape, dtype=dt.int64)


def _max_pool_impl(x, kernel_size, stride, padding, dilation, ceil_mode=False):
    """Max over -inf padded windows, one vectorised pass per kernel tap; indices are flat offsets into each unpadded
    H*W plane. Like PyTorch, a later tap wins only if strictly greater, or NaN."""
    (h, w), k = x.shape[-2:], kernel_size
    out_hw = tuple(_out_size(x.shape[-2 + a], k[a], stride[a], padding[a], dilation[a], ceil_mode) for a in range(2))
    xp = _padded(_planes(x), padding, _buffer_shape((h, w), out_hw, k, stride, padding, dilation), -np.inf)
    win = _windows(xp, out_hw, k, stride, dilation)
    best, arg = win[..., 0, 0].copy(), np.zeros(win.shape[:-2], dtype=np.int32)
    for tap in range(1, k[0] * k[1]):
        v = win[..., tap // k[1], tap % k[1]]
        better = (v > best) | np.isnan(v)
        arg += better * (tap - arg)  # arithmetic select: np.where/copyto are ~10x slower on strided views
        np.maximum(best, v, out=best)
    taps = (np.arange(k[0])[:, None] * dilation[0] * w + np.arange(k[1]) * dilation[1]).ravel()
    top, left = np.arange(out_hw[0]) * stride[0] - padding[0], np.arange(out_hw[1]) * stride[1] - padding[1]
    corner = top[:, None] * w + left
    out_shape = x.shape[:-2] + out_hw
    return best.reshape(out_shape), (taps[arg] + corner).reshape(out_shape)


def _max_pool_grad(c, g, _g_indices):
    return (op.max_pool2d_backward(g, c.outputs[1], input_shape=c.in_types[0].shape),)


def _max_pool_backward_infer(g, indices, input_shape):
    if tuple(indices.shape) != tuple(g.shape) or tuple(g.shape[:-2]) != tuple(input_shape[:-2]):
        raise OpError(f"max_pool2d_backward: grad_output {fmt_shape(g.shape)} and indices {fmt_shape(indices.shape)} "
                      f"must share one shape whose leading dims match the input shape {fmt_shape(input_shape)}")
    return g.with_(shape=tuple(input_shape))


def _max_pool_backward_impl(g, indices, input_shape):
    """Route each output gradient to its argmax (summing where windows overlap) with one bincount."""
    hw = input_shape[-2] * input_shape[-1]
    flat_idx = _planes(indices).reshape(-1, indices.shape[-2] * indices.shape[-1])
    flat = (flat_idx + np.arange(flat_idx.shape[0])[:, None] * hw).ravel()
    total = flat_idx.shape[0] * hw
    return np.bincount(flat, weights=g.ravel(), minlength=total).astype(g.dtype).reshape(input_shape)


def _avg_attrs_infer(opname):
    def infer(x, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True, divisor_override=None,
              input_shape=None):
        if divisor_override is not None and divisor_override == 0:
            raise OpError(f"{opname}: divisor must be not zero")
        target = x.with_(shape=tuple(input_shape)) if input_shape is not None else x
        shape = _pool_infer_shape(opname, target, kernel_size, stride, padding, (1, 1), ceil_mode)
        if input_shape is None:
            return x.with_(shape=shape)
        if tuple(x.shape) != shape:
            raise OpError(f"{opname}: grad_output shape {fmt_shape(x.shape)} does not match the pooled shape "
                          f"{fmt_shape(shape)} of input {fmt_shape(input_shape)}")
        return target

    return infer


def _avg_divisor(in_hw, out_hw, k, s, p, count_include_pad, divisor_override):
    """PyTorch's per-window divisor (Ho, Wo): override, or window area with or without the padded cells."""
    if divisor_override is not None:
        return np.full(out_hw, divisor_override)
    spans = []
    for size, out, kk, ss, pp in zip(in_hw, out_hw, k, s, p):
        start = np.arange(out) * ss - pp
        end = np.minimum(start + kk, size + pp)
        spans.append(end - start if count_include_pad else np.minimum(end, size) - np.maximum(start, 0))
    return np.outer(*spans)


def _avg_geometry(shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    out_hw = tuple(_out_size(shape[-2 + a], kernel_size[a], stride[a], padding[a], 1, ceil_mode) for a in range(2))
    div = _avg_divisor(shape[-2:], out_hw, kernel_size, stride, padding, count_include_pad, divisor_override)
    return out_hw, _buffer_shape(shape[-2:], out_hw, kernel_size, stride, padding, (1, 1)), div


def _avg_pool_impl(x, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True, divisor_override=None):
    out_hw, buf, div = _avg_geometry(x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                     divisor_override)
    sums = _windows(_padded(_planes(x), padding, buf, 0), out_hw, kernel_size, stride, (1, 1)).sum(axis=(-2, -1))
    return (sums / div.astype(x.dtype)).astype(x.dtype, copy=False).reshape(x.shape[:-2] + out_hw)


def _avg_pool_backward_impl(g, input_shape, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True,
                            divisor_override=None):
    """Each output gradient, divided by its window's divisor, spread over the window (kh*kw slice-adds)."""
    out_hw, buf, div = _avg_geometry(input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                     divisor_override)
    share = _planes(g) / div.astype(g.dtype)
    dst = np.zeros((share.shape[0],) + buf, dtype=g.dtype)
    _scatter_windows(dst, np.broadcast_to(share, tuple(kernel_size) + share.shape), out_hw, stride, (1, 1))
    (ph, pw), (h, w) = padding, input_shape[-2:]
    return np.ascontiguousarray(dst[:, ph:ph + h, pw:pw + w]).reshape(input_shape)


def _avg_pool_grad(c, g):
    return (op.avg_pool2d_backward(g, input_shape=c.in_types[0].shape, **c.attrs),)


def _avg_pool_backward_grad(c, gg):
    """avg_pool2d_backward is the transpose of the linear avg_pool2d, so its own transpose is avg_pool2d."""
    return (op.avg_pool2d(gg, **_attrs_without(c.attrs, "input_shape")),)


register(OpDef("max_pool2d", "pool", _max_pool_infer, _max_pool_impl, _max_pool_grad, save_outputs=(1,),
               kernel="max_pool2d", n_outputs=2))
register(OpDef("max_pool2d_backward", "pool", _max_pool_backward_infer, _max_pool_backward_impl,
               kernel="max_pool2d_backward"))
register(OpDef("avg_pool2d", "pool", _avg_attrs_infer("avg_pool2d"), _avg_pool_impl, _avg_pool_grad,
               kernel="avg_pool2d"))
register(OpDef("avg_pool2d_backward", "pool", _avg_attrs_infer("avg_pool2d_backward"), _avg_pool_backward_impl,
               _avg_pool_backward_grad, kernel="avg_pool2d_backward"))
