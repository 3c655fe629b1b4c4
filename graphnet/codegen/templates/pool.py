"""Shape-generic pooling kernels (forward and backward), compiled once and cached."""
import numpy as np
from numba import njit


@njit(cache=True)
def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, out, indices):
    """out/indices (N, C, oh, ow): the max of each window and its flat index in the H*W plane (-inf padding)."""
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


@njit(cache=True)
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
