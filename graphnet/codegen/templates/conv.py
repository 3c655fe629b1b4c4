"""Shape-generic conv2d kernels: per-sample im2col + BLAS GEMMs that read and write NCHW directly. Compiled once
(cache=True) and shared by every model.

Layouts: cols is (N, C*kh*kw, oh*ow). Sample n's forward GEMM is W (O, C*kh*kw) @ cols[n], whose (O, oh*ow) result
is out[n] itself, and g[n] (O, oh*ow) is already the operand of both backward products, so no layout pass is
needed. Each sample is unfolded (or folded back) right before (after) its GEMM, while its columns are in cache.
The forward leaves cols filled, so a weight gradient of the same input can skip its own im2col. Inner loops index
flat arrays with unsigned offsets: Numba then skips negative-index wraparound and LLVM vectorises the row copies.
Geometry travels as one tuple `geo` = (kh, kw, sh, sw, ph, pw, dh, dw). The entry points release the GIL, so a
caller may run two halves of a batch on two threads.
"""
import numpy as np
from numba import njit

from .blas import mm

_U = np.uint64


@njit(cache=True)
def _out_hw(h, w, geo):
    kh, kw, sh, sw, ph, pw, dh, dw = geo
    return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1


@njit(cache=True)
def _span(size, out, k, s, p, d):
    """Outputs [lo, hi) whose tap k lands inside [0, size) at o*s + off, with off = k*d - p; and off."""
    off = k * d - p
    lo = 0 if off >= 0 else (s - 1 - off) // s
    hi = (size - off + s - 1) // s if size > off else 0
    return lo, max(lo, min(out, hi)), off


@njit(cache=True)
def _unfold(xf, x0, cf, c0, planes, h_, w_, oh, ow, geo):
    """Columns of `planes` consecutive (H, W) planes at xf[x0:] into cf[c0:]:
    cols[(c, i, j), y*ow + q] = x[c, y*sh + i*dh - ph, q*sw + j*dw - pw], 0 where that is padding."""
    kh, kw, sh, sw, ph, pw, dh, dw = geo
    p_ = oh * ow
    for c in range(planes):
        for i in range(kh):
            ylo, yhi, yoff = _span(h_, oh, i, sh, ph, dh)
            for j in range(kw):
                xlo, xhi, xoff = _span(w_, ow, j, sw, pw, dw)
                dst, src = c0 + ((c * kh + i) * kw + j) * p_, x0 + (c * h_ + yoff) * w_ + xoff
                if ylo > 0 or yhi < oh or xlo > 0 or xhi < ow:
                    cf[dst:dst + p_] = 0
                for y in range(ylo, yhi):
                    d0, s0 = dst + y * ow, src + y * sh * w_
                    if sw == 1:
                        for q in range(xlo, xhi):
                            cf[_U(d0 + q)] = xf[_U(s0 + q)]
                    else:
                        for q in range(xlo, xhi):
                            cf[_U(d0 + q)] = xf[_U(s0 + q * sw)]


@njit(cache=True)
def _padded_planes(xf, c_, h_, w_, geo):
    """Zeroed scratch for _unfold_padded: C planes of (H+2ph, W+2pw), or none when there is no padding."""
    ph, pw = geo[4], geo[5]
    return np.zeros(c_ * (h_ + 2 * ph) * (w_ + 2 * pw) if ph or pw else 0, xf.dtype)


@njit(cache=True)
def _unfold_padded(xf, x0, cf, c0, planes, h_, w_, oh, ow, geo, pf):
    """_unfold, via a copy of the planes into the interiors of pf's zero-bordered ones when there is padding: the
    columns then need no zero fill and every row copy is full width (1.5-3x faster than unfolding in bounds)."""
    kh, kw, sh, sw, ph, pw, dh, dw = geo
    if pf.size == 0:
        _unfold(xf, x0, cf, c0, planes, h_, w_, oh, ow, geo)
        return
    hp, wp = h_ + 2 * ph, w_ + 2 * pw
    for c in range(planes):
        for y in range(h_):
            d0, s0 = (c * hp + y + ph) * wp + pw, x0 + (c * h_ + y) * w_
            for q in range(w_):
                pf[_U(d0 + q)] = xf[_U(s0 + q)]
    _unfold(pf, 0, cf, c0, planes, hp, wp, oh, ow, (kh, kw, sh, sw, 0, 0, dh, dw))


@njit(cache=True)
def _fold(cf, c0, xf, x0, planes, h_, w_, oh, ow, geo):
    """The adjoint of _unfold: scatter-add the columns at cf[c0:] into the (zeroed) planes at xf[x0:]."""
    kh, kw, sh, sw, ph, pw, dh, dw = geo
    p_ = oh * ow
    for c in range(planes):
        for i in range(kh):
            ylo, yhi, yoff = _span(h_, oh, i, sh, ph, dh)
            for j in range(kw):
                xlo, xhi, xoff = _span(w_, ow, j, sw, pw, dw)
                src, dst = c0 + ((c * kh + i) * kw + j) * p_, x0 + (c * h_ + yoff) * w_ + xoff
                for y in range(ylo, yhi):
                    s0, d0 = src + y * ow, dst + y * sh * w_
                    if sw == 1:
                        for q in range(xlo, xhi):
                            xf[_U(d0 + q)] += cf[_U(s0 + q)]
                    else:
                        for q in range(xlo, xhi):
                            xf[_U(d0 + q * sw)] += cf[_U(s0 + q)]


@njit(cache=True)
def im2col(x, geo, cols):
    """Unfold a C-contiguous x (N, C, H, W) into cols (N, C*kh*kw, oh*ow)."""
    n_, c_, h_, w_ = x.shape
    oh, ow = _out_hw(h_, w_, geo)
    xf = x.reshape(-1)
    _unfold_padded(xf, 0, cols.reshape(-1), 0, n_ * c_, h_, w_, oh, ow, geo, _padded_planes(xf, n_ * c_, h_, w_, geo))


@njit(cache=True)
def _epilogue(res, bias, has_bias, relu):
    """res (O, oh*ow) <- relu?(res + bias[:, None]), in place while it is still in cache."""
    for o in range(res.shape[0]):
        b = bias[o] if has_bias else np.float32(0.0)
        for k in range(res.shape[1]):
            v = res[o, k] + b
            res[o, k] = max(v, np.float32(0.0)) if relu else v


@njit(cache=True, nogil=True)
def conv2d_forward(x, w, bias, has_bias, relu, geo, groups, cols, out):
    """out = relu?(conv2d(x, w) + bias). With `cols` (N, C*kh*kw, oh*ow) it is left holding x's columns; with a
    single plane (1, C*kh*kw, oh*ow) every sample reuses it, so the columns stay in cache."""
    n_, c_, h_, w_ = x.shape
    _, o_, oh, ow = out.shape
    og, kg = o_ // groups, w.size // o_
    xf, cf, w2, res = x.reshape(-1), cols.reshape(-1), w.reshape(o_, kg), out.reshape(n_, o_, oh * ow)
    pf = _padded_planes(xf, c_, h_, w_, geo)
    for n in range(n_):
        p = n if cols.shape[0] == n_ else 0
        _unfold_padded(xf, n * c_ * h_ * w_, cf, p * cols.shape[1] * cols.shape[2], c_, h_, w_, oh, ow, geo, pf)
        for gi in range(groups):
            mm(w2[gi * og:(gi + 1) * og], cols[p, gi * kg:(gi + 1) * kg], res[n, gi * og:(gi + 1) * og], False, False,
               0.0)
        if has_bias or relu:
            _epilogue(res[n], bias, has_bias, relu)


@njit(cache=True, nogil=True)
def conv2d_weight_grad(x, g, geo, groups, unfold, cols, acc, dw):
    """dw (O, C/groups, kh, kw) = sum_n g[n] @ cols[n]^T per group; with `unfold`, cols[n] is filled from x first (else
    it holds the forward's columns; an unfolding call may pass a single plane that every sample reuses). BLAS runs
    cols[n] @ g[n]^T faster at these skinny shapes, so the products are summed transposed, by BLAS itself, in acc
    (C/groups*kh*kw, O/groups)."""
    n_, c_, h_, w_ = x.shape
    _, o_, oh, ow = g.shape
    kg, og = acc.shape
    g3, d2, xf, cf = g.reshape(n_, o_, oh * ow), dw.reshape(o_, kg), x.reshape(-1), cols.reshape(-1)
    pf = _padded_planes(xf, c_, h_, w_, geo)
    for gi in range(groups):
        if n_ == 0:
            acc[:] = 0
        for n in range(n_):
            p = n if cols.shape[0] == n_ else 0
            if unfold and (gi == 0 or p != n or cols.shape[0] != n_):
                _unfold_padded(xf, n * c_ * h_ * w_, cf, p * cols.shape[1] * cols.shape[2], c_, h_, w_, oh, ow, geo,
                               pf)
            mm(cols[p, gi * kg:(gi + 1) * kg], g3[n, gi * og:(gi + 1) * og], acc, False, True, 0.0 if n == 0 else 1.0)
        for o in range(og):
            for k in range(kg):
                d2[gi * og + o, k] = acc[k, o]


@njit(cache=True, nogil=True)
def conv2d_input_grad(g, w, geo, groups, dcols, dx):
    """dx = col2im(w^T @ g[n]) one sample at a time; dcols is (C*kh*kw, oh*ow) scratch."""
    n_, o_, oh, ow = g.shape
    _, c_, h_, w_ = dx.shape
    og, kg = o_ // groups, w.size // o_
    w2, g3, xf, cf = w.reshape(o_, kg), g.reshape(n_, o_, oh * ow), dx.reshape(-1), dcols.reshape(-1)
    xf[:] = 0
    for n in range(n_):
        for gi in range(groups):
            mm(w2[gi * og:(gi + 1) * og], g3[n, gi * og:(gi + 1) * og], dcols[gi * kg:(gi + 1) * kg], True, False, 0.0)
        _fold(cf, 0, xf, n * c_ * h_ * w_, c_, h_, w_, oh, ow, geo)
