"""conv2d forward and both gradients on the GPU: im2col (gather) + the tiled GEMM, and col2im as a gather.

Layouts match the CPU kernels: columns are (N, G, Cg*kh*kw, Ho*Wo), i.e. (N, C, kh, kw, Ho, Wo) row-major, so one
GEMM batched over (n, g) with strided operands does every group of every sample. No atomics: col2im gathers.
"""
import functools

import numpy as np

from ...runtime import storage
from ..cuda import grid_for, load
from .cuda_gemm import gemm_strided

SOURCE = '''from numba import cuda


@cuda.jit(cache=True)
def im2col(x, cols, total, c, h, w, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw):
    for i in range(cuda.grid(1), total, cuda.gridsize(1)):
        ow = i % wo
        r = i // wo
        oh = r % ho
        r = r // ho
        j = r % kw
        r = r // kw
        k = r % kh
        r = r // kh
        y, z = oh * sh - ph + k * dh, ow * sw - pw + j * dw
        v = x[0] * 0
        if 0 <= y < h and 0 <= z < w:
            v = x[(r * h + y) * w + z]
        cols[i] = v


@cuda.jit(cache=True)
def col2im(taps, dx, total, c, h, w, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw):
    for i in range(cuda.grid(1), total, cuda.gridsize(1)):
        z = i % w
        r = i // w
        y = r % h
        nc = r // h
        acc = taps[0] * 0
        for k in range(kh):
            yy = y + ph - k * dh
            if yy >= 0 and yy % sh == 0 and yy // sh < ho:
                for j in range(kw):
                    zz = z + pw - j * dw
                    if zz >= 0 and zz % sw == 0 and zz // sw < wo:
                        acc += taps[(((nc * kh + k) * kw + j) * ho + yy // sh) * wo + zz // sw]
        dx[i] = acc


@cuda.jit(cache=True)
def sum_leading(parts, out, size, n):
    for i in range(cuda.grid(1), size, cuda.gridsize(1)):
        acc = parts[i] * 0
        for b in range(n):
            acc += parts[b * size + i]
        out[i] = acc
'''


@functools.lru_cache(maxsize=None)
def _kernel(name):
    return load(SOURCE, name)


def _launch(name, total, *args):
    if total:
        _kernel(name)[grid_for(total)](*args[:2], total, *args[2:])


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
