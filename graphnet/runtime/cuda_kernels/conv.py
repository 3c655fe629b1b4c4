"""conv2d and its gradients on device arrays: im2col/col2im launches of codegen's cuda_conv kernels around the GEMM."""
import numpy as np

from ...codegen.cuda import grid_for
from ...codegen.templates.cuda_conv import kernel
from .. import storage
from .gemm import gemm_strided


def _launch(name, total, *args):
    if total:
        kernel(name)[grid_for(total)](*args[:2], total, *args[2:])


def _out_hw(hw, k, stride, padding, dilation):
    return tuple((hw[a] + 2 * padding[a] - dilation[a] * (k[a] - 1) - 1) // stride[a] + 1 for a in range(2))


def _im2col(x, k, out_hw, stride, padding, dilation):
    n, c, h, w = x.shape
    cols = storage.empty((n, c * k[0] * k[1], out_hw[0] * out_hw[1]), x.dtype)
    _launch("im2col", cols.size, storage.flat(x), storage.flat(cols), c, h, w, *k, *out_hw, *stride, *padding,
            *dilation)
    return cols


def conv2d(x, w, stride, padding, dilation, groups):
    """(N, C, H, W) * (O, C/groups, kh, kw) -> (N, O, Ho, Wo) for contiguous device arrays."""
    (n, _, h, wd), (o, cg, kh, kw) = x.shape, w.shape
    out_hw = _out_hw((h, wd), (kh, kw), stride, padding, dilation)
    cols = _im2col(x, (kh, kw), out_hw, stride, padding, dilation)
    p, kk, og = out_hw[0] * out_hw[1], cg * kh * kw, o // groups
    out = storage.empty((n, o) + out_hw, x.dtype)
    gemm_strided(storage.flat(w), storage.flat(cols), storage.flat(out), og, p, kk, (n, groups),
                 (0, og * kk, kk, 1), (groups * kk * p, kk * p, p, 1))
    return out


def conv2d_input_grad(g, w, input_shape, stride, padding, dilation, groups):
    """dL/dx: taps = W_g^T @ g[n, g] (one batched GEMM), then col2im gathers the taps into each input pixel."""
    (n, c, h, wd), (o, cg, kh, kw), out_hw = input_shape, w.shape, g.shape[2:]
    p, kk, og = out_hw[0] * out_hw[1], cg * kh * kw, o // groups
    taps = storage.empty((n, groups * kk, p), g.dtype)
    gemm_strided(storage.flat(w), storage.flat(g), storage.flat(taps), kk, p, og, (n, groups),
                 (0, og * kk, 1, kk), (groups * og * p, og * p, p, 1))
    dx = storage.empty(tuple(input_shape), g.dtype)
    _launch("col2im", dx.size, storage.flat(taps), storage.flat(dx), c, h, wd, kh, kw, *out_hw, *stride, *padding,
            *dilation)
    return dx


def conv2d_weight_grad(x, g, weight_shape, stride, padding, dilation, groups):
    """dL/dW = sum_n g[n, g] @ cols[n, g]^T: per-sample GEMMs batched over (n, g), then a sum over n."""
    n, (o, cg, kh, kw), out_hw = x.shape[0], weight_shape, g.shape[2:]
    cols = _im2col(x, (kh, kw), out_hw, stride, padding, dilation)
    p, kk, og = out_hw[0] * out_hw[1], cg * kh * kw, o // groups
    parts = storage.empty((n, o * kk), g.dtype)
    gemm_strided(storage.flat(g), storage.flat(cols), storage.flat(parts), og, kk, p, (n, groups),
                 (groups * og * p, og * p, p, 1), (groups * kk * p, kk * p, 1, p))
    dw = storage.empty(tuple(weight_shape), g.dtype)
    if n == 0:
        return _zeros_like(dw)
    _launch("sum_leading", dw.size, storage.flat(parts), storage.flat(dw), n)
    return dw


def _zeros_like(arr):
    if arr.size:
        storage.flat(arr).copy_to_device(np.zeros(arr.size, arr.dtype))
    return arr
