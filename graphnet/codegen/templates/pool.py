"""Shape-generic pooling kernels (forward and backward), compiled once and cached.

Max pooling's common case (2x2 windows, stride 2, no padding or dilation) has a branch-free fast path over
C-contiguous planes; every other geometry takes the generic loop. The max-pool entry points release the GIL.
"""
import numpy as np
from numba import njit

_U = np.uint64


@njit(cache=True, inline="always")
def _wins(v, best):
    """PyTorch's running max: a later tap wins only if strictly greater, or NaN."""
    return (v > best) | (v != v)


@njit(cache=True)
def _max_pool_2x2(x, out, indices):
    """2x2/stride-2 windows, all inside the plane. Per output row, a float-only pass (max + winning tap 0..3) then
    the int64 index pass: two simple loops LLVM vectorises, unlike one mixed loop."""
    n_, c_, h_, w_ = x.shape
    oh, ow = out.shape[2], out.shape[3]
    xf, of, idf = x.reshape(-1), out.reshape(-1), indices.reshape(-1)
    tap = np.empty(ow, np.int32)
    for p in range(n_ * c_):
        for y in range(oh):
            top, dst = p * h_ * w_ + 2 * y * w_, (p * oh + y) * ow
            for q in range(ow):
                a, b = xf[_U(top + 2 * q)], xf[_U(top + 2 * q + 1)]
                c, d = xf[_U(top + w_ + 2 * q)], xf[_U(top + w_ + 2 * q + 1)]
                t1 = _wins(b, a)
                m = b if t1 else a
                t2 = _wins(c, m)
                m = c if t2 else m
                t3 = _wins(d, m)
                of[_U(dst + q)] = d if t3 else m
                tap[q] = np.int32(3) if t3 else (np.int32(2) if t2 else np.int32(t1))
            for q in range(ow):
                t = tap[q]
                idf[_U(dst + q)] = (2 * y + (t >> 1)) * w_ + 2 * q + (t & 1)


@njit(cache=True, nogil=True)
def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, out, indices):
    """out/indices (N, C, oh, ow): the max of each window and its flat index in the H*W plane (-inf padding)."""
    if kh == kw == sh == sw == 2 and ph == pw == 0 and dh == dw == 1:
        _max_pool_2x2(x, out, indices)
        return
    n_, c_, h_, w_ = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for n in range(n_):
        for c in range(c_):
            plane = x[n, c]
            for y in range(oh):
                for xx in range(ow):
                    best, arg = -np.inf, -1
                    for i in range(kh):
                        iy = y * sh - ph + i * dh
                        if iy < 0 or iy >= h_:
                            continue
                        for j in range(kw):
                            ix = xx * sw - pw + j * dw
                            if 0 <= ix < w_:
                                v = plane[iy, ix]
                                if v > best or arg < 0 or v != v:
                                    best, arg = v, iy * w_ + ix
                    out[n, c, y, xx] = best
                    indices[n, c, y, xx] = arg


@njit(cache=True, nogil=True)
def max_pool2d_backward(g, indices, dx):
    """dx (N, C, H, W) = scatter-add of g at the argmax positions (zeroed first)."""
    n_, c_, h_, w_ = dx.shape
    oh, ow = g.shape[2], g.shape[3]
    flat = dx.reshape(n_, c_, h_ * w_)
    flat[:] = 0
    for n in range(n_):
        for c in range(c_):
            for y in range(oh):
                for xx in range(ow):
                    flat[n, c, indices[n, c, y, xx]] += g[n, c, y, xx]


@njit(cache=True)
def _avg_divisor(y, xx, h_, w_, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    if divisor_override > 0:
        return divisor_override
    y0, x0 = y * sh - ph, xx * sw - pw
    y1, x1 = min(y0 + kh, h_ + ph), min(x0 + kw, w_ + pw)
    if count_include_pad:
        return (y1 - y0) * (x1 - x0)
    return (min(y1, h_) - max(y0, 0)) * (min(x1, w_) - max(x0, 0))


@njit(cache=True)
def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override, out):
    n_, c_, h_, w_ = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for n in range(n_):
        for c in range(c_):
            for y in range(oh):
                for xx in range(ow):
                    acc = 0.0
                    for iy in range(max(y * sh - ph, 0), min(y * sh - ph + kh, h_)):
                        for ix in range(max(xx * sw - pw, 0), min(xx * sw - pw + kw, w_)):
                            acc += x[n, c, iy, ix]
                    out[n, c, y, xx] = acc / _avg_divisor(y, xx, h_, w_, kh, kw, sh, sw, ph, pw, count_include_pad,
                                                          divisor_override)


@njit(cache=True)
def avg_pool2d_backward(g, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override, dx):
    n_, c_, h_, w_ = dx.shape
    oh, ow = g.shape[2], g.shape[3]
    dx[:] = 0
    for n in range(n_):
        for c in range(c_):
            for y in range(oh):
                for xx in range(ow):
                    share = g[n, c, y, xx] / _avg_divisor(y, xx, h_, w_, kh, kw, sh, sw, ph, pw, count_include_pad,
                                                          divisor_override)
                    for iy in range(max(y * sh - ph, 0), min(y * sh - ph + kh, h_)):
                        for ix in range(max(xx * sw - pw, 0), min(xx * sw - pw + kw, w_)):
                            dx[n, c, iy, ix] += share
