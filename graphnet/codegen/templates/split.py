"""The conv/pool kernels over the two halves of a batch at once, for generated drivers (a Program run from Python
splits with a helper thread instead). Each is a `prange(2)` over the halves, compiled once (cache=True) and shared
by every model; Numba's thread pool runs one half per thread.
"""
from numba import njit, prange

from .conv import conv2d_forward, conv2d_input_grad, conv2d_weight_grad
from .pool import max_pool2d_backward, max_pool2d_forward


@njit(cache=True, parallel=True)
def conv2d_forward_halves(x, w, bias, has_bias, relu, geo, groups, cols, out):
    n = x.shape[0]
    for k in prange(2):
        h = slice(k * n // 2, (k + 1) * n // 2)
        conv2d_forward(x[h], w, bias, has_bias, relu, geo, groups, cols[h], out[h])


@njit(cache=True, parallel=True)
def conv2d_weight_grad_halves(x, g, geo, groups, unfold, cols, acc, dw, part):
    """dw = the first half's gradient + the second's (computed into `part`)."""
    n = x.shape[0]
    for k in prange(2):
        h = slice(k * n // 2, (k + 1) * n // 2)
        conv2d_weight_grad(x[h], g[h], geo, groups, unfold, cols[h], acc[k], dw if k == 0 else part)
    dw += part


@njit(cache=True, parallel=True)
def conv2d_input_grad_halves(g, w, geo, groups, dcols, dx):
    n = g.shape[0]
    for k in prange(2):
        h = slice(k * n // 2, (k + 1) * n // 2)
        conv2d_input_grad(g[h], w, geo, groups, dcols[k], dx[h])


@njit(cache=True, parallel=True)
def max_pool2d_forward_halves(x, kh, kw, sh, sw, ph, pw, dh, dw, out, indices):
    n = x.shape[0]
    for k in prange(2):
        h = slice(k * n // 2, (k + 1) * n // 2)
        max_pool2d_forward(x[h], kh, kw, sh, sw, ph, pw, dh, dw, out[h], indices[h])


@njit(cache=True, parallel=True)
def max_pool2d_backward_halves(g, indices, dx):
    n = g.shape[0]
    for k in prange(2):
        h = slice(k * n // 2, (k + 1) * n // 2)
        max_pool2d_backward(g[h], indices[h], dx[h])
