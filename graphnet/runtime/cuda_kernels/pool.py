"""max/avg pooling forward and backward on device arrays: outputs allocated, codegen's cuda_pool kernels launched."""
import numpy as np

from ...codegen.cuda import grid_for
from ...codegen.templates.cuda_pool import kernel
from .. import storage


def max_pool2d(x, out_shape, kernel_size, stride, padding, dilation):
    """(values, int64 indices) of shape `out_shape` for a contiguous (..., H, W) device array."""
    out, idx = storage.empty(out_shape, x.dtype), storage.empty(out_shape, np.int64)
    args = (*x.shape[-2:], *out_shape[-2:], *kernel_size, *stride, *padding, *dilation)
    if out.size:
        kernel("max_fwd")[grid_for(out.size)](storage.flat(x), storage.flat(out), storage.flat(idx), out.size, *args)
    return out, idx


def max_pool2d_backward(g, indices, input_shape):
    dx = storage.empty(tuple(input_shape), g.dtype)
    if dx.size:
        storage.flat(dx).copy_to_device(np.zeros(dx.size, dx.dtype))
    if g.size:
        hw, howo = input_shape[-2] * input_shape[-1], g.shape[g.ndim - 2] * g.shape[g.ndim - 1]
        kernel("max_bwd")[grid_for(g.size)](storage.flat(g), storage.flat(indices), storage.flat(dx), g.size, hw,
                                            howo)
    return dx


def _avg_args(in_hw, out_hw, kernel_size, stride, padding, count_include_pad, divisor_override):
    return (*in_hw, *out_hw, *kernel_size, *stride, *padding, int(bool(count_include_pad)), int(divisor_override or 0))


def avg_pool2d(x, out_shape, kernel_size, stride, padding, count_include_pad=True, divisor_override=None):
    out = storage.empty(out_shape, x.dtype)
    args = _avg_args(x.shape[-2:], out_shape[-2:], kernel_size, stride, padding, count_include_pad, divisor_override)
    if out.size:
        kernel("avg_fwd")[grid_for(out.size)](storage.flat(x), storage.flat(out), out.size, *args)
    return out


def avg_pool2d_backward(g, input_shape, kernel_size, stride, padding, count_include_pad=True, divisor_override=None):
    dx = storage.empty(tuple(input_shape), g.dtype)
    args = _avg_args(input_shape[-2:], g.shape[-2:], kernel_size, stride, padding, count_include_pad,
                     divisor_override)
    if dx.size:
        kernel("avg_bwd")[grid_for(dx.size)](storage.flat(g), storage.flat(dx), dx.size, *args)
    return dx
