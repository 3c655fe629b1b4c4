"""Shape-generic conv2d kernels: im2col + one BLAS GEMM per group, with the bias/ReLU epilogue fused into the
layout change back to NCHW. Compiled once (cache=True) and shared by every model.

Layouts: cols is (C*kh*kw, N*oh*ow); the GEMM result `tmp` is (O, N*oh*ow).
"""
import numpy as np
from numba import njit


@njit(cache=True)
def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols):
    """Unfold the receptive fields of x (N, C, H, W) into the columns of `cols`."""
    n_, c_, h_, w_ = x.shape
    oh, ow = _out_hw(h_, w_, kh, kw, sh, sw, ph, pw, dh, dw)
    for c in range(c_):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for n in range(n_):
                    for y in range(oh):
                        iy = y * sh - ph + i * dh
                        base = (n * oh + y) * ow
                        if iy < 0 or iy >= h_:
                            cols[row, base:base + ow] = 0
                            continue
                        for xx in range(ow):
                            ix = xx * sw - pw + j * dw
                            cols[row, base + xx] = x[n, c, iy, ix] if 0 <= ix < w_ else 0


@njit(cache=True)
def col2im(dcols, kh, kw, sh, sw, ph, pw, dh, dw, dx):
    """The adjoint of im2col: scatter-add the columns back into dx (N, C, H, W), which is zeroed first."""
    n_, c_, h_, w_ = dx.shape
    oh, ow = _out_hw(h_, w_, kh, kw, sh, sw, ph, pw, dh, dw)
    dx[:] = 0
    for n in range(n_):
        for c in range(c_):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    for y in range(oh):
                        iy = y * sh - ph + i * dh
                        if iy < 0 or iy >= h_:
                            continue
                        base = (n * oh + y) * ow
                        for xx in range(ow):
                            ix = xx * sw - pw + j * dw
                            if 0 <= ix < w_:
                                dx[n, c, iy, ix] += dcols[row, base + xx]


@njit(cache=True, inline="always")
def _out_hw(h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1


@njit(cache=True)
def grouped_gemm(w2, cols, groups, tmp):
    """tmp[g] = w2[g] @ cols[g] for each group g (rows of w2 and cols split evenly)."""
    og, kg = w2.shape[0] // groups, cols.shape[0] // groups
    if groups == 1:
        np.dot(w2, cols, tmp)
        return
    for g in range(groups):
        np.dot(w2[g * og:(g + 1) * og], cols[g * kg:(g + 1) * kg], tmp[g * og:(g + 1) * og])


@njit(cache=True)
def to_nchw(tmp, bias, has_bias, relu, out):
    """out (N, O, oh, ow) <- tmp (O, N*oh*ow) + bias, then ReLU when asked (the GEMM epilogue)."""
    n_, o_, oh, ow = out.shape
    hw = oh * ow
    flat = out.reshape(n_, o_, hw)
    for n in range(n_):
        for o in range(o_):
            b = bias[o] if has_bias else 0.0
            src = tmp[o, n * hw:(n + 1) * hw]
            dst = flat[n, o]
            for k in range(hw):
                v = src[k] + b
                dst[k] = (v if v > 0 else 0.0) if relu else v


@njit(cache=True)
def from_nchw(g, tmp):
    """tmp (O, N*oh*ow) <- g (N, O, oh, ow): the gradient in GEMM layout."""
    n_, o_, oh, ow = g.shape
    hw = oh * ow
    flat = g.reshape(n_, o_, hw)
    for o in range(o_):
        for n in range(n_):
            tmp[o, n * hw:(n + 1) * hw] = flat[n, o]


@njit(cache=True)
def conv2d_forward(x, w, bias, has_bias, relu, sh, sw, ph, pw, dh, dw, groups, cols, tmp, out):
    """out = relu?(conv2d(x, w) + bias); `cols` is kept by the caller for the weight gradient."""
    o_, cg, kh, kw = w.shape
    im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols)
    grouped_gemm(w.reshape(o_, cg * kh * kw), cols, groups, tmp)
    to_nchw(tmp, bias, has_bias, relu, out)


@njit(cache=True)
def conv2d_weight_grad(g, cols, groups, tmp, dw):
    """dw (O, C/groups, kh, kw) = g @ cols^T per group, reusing the forward's cols."""
    from_nchw(g, tmp)
    o_ = dw.shape[0]
    k = dw.size // o_
    d2 = dw.reshape(o_, k)
    og, kg = o_ // groups, cols.shape[0] // groups
    for gi in range(groups):
        np.dot(tmp[gi * og:(gi + 1) * og], cols[gi * kg:(gi + 1) * kg].T, d2[gi * og:(gi + 1) * og])


@njit(cache=True)
def conv2d_input_grad(g, w, sh, sw, ph, pw, dh, dw, groups, tmp, dcols, dx):
    """dx = col2im(w^T @ g) per group."""
    from_nchw(g, tmp)
    o_, cg, kh, kw = w.shape
    w2 = w.reshape(o_, cg * kh * kw)
    og, kg = o_ // groups, cg * kh * kw
    for gi in range(groups):
        np.dot(w2[gi * og:(gi + 1) * og].T, tmp[gi * og:(gi + 1) * og], dcols[gi * kg:(gi + 1) * kg])
    col2im(dcols, kh, kw, sh, sw, ph, pw, dh, dw, dx)
