"""nn.functional adaptive pooling, interpolation, pixel shuffle and max unpooling, as composites: the (static)
window and sample positions become constant index tensors or (out, in) weight matrices, so every function traces,
compiles, differentiates and runs on CUDA through index_select, matmul, max, scatter and reshape."""
import math

import numpy as np

from ...core import dtype as dt
from ...frontend.tensor import Tensor
from .conv import _pair, avg_pool2d


def constant(array, like):
    """A host-computed NumPy array as a constant tensor on `like`'s device (float arrays take `like`'s dtype)."""
    dtype = like.dtype if array.dtype.kind == "f" else dt.int64
    t = Tensor._wrap(np.ascontiguousarray(array, dtype=dtype.np), dtype)
    return t if t.device == like.device else t.to(like.device)  # (a traced .to() would hide the values)


def along(x, dim, matrix):
    """Apply an (out, in) matrix to dim `dim` (a negative spatial dim) of x: a weighted resample along one axis."""
    if dim == -1:
        return x @ matrix.t()
    moved = x.transpose(dim, -2)
    return (matrix @ moved).transpose(dim, -2)


# ---- adaptive pooling ---------------------------------------------------------------------------------------------


def _bins(size, out):
    """PyTorch's adaptive windows: bin i covers floor(i*size/out) .. ceil((i+1)*size/out)-1."""
    i = np.arange(out)
    return (i * size) // out, -(-((i + 1) * size) // out)


def _average_matrix(size, out):
    lo, hi = _bins(size, out)
    m = np.zeros((out, size))
    for i in range(out):
        m[i, lo[i]:hi[i]] = 1.0 / (hi[i] - lo[i])
    return m


def _window_index(size, out):
    """(out, k) input positions of each bin, k the widest bin; narrower bins repeat their last cell (which changes
    neither the max nor, since it comes after the real cells, the first argmax)."""
    lo, hi = _bins(size, out)
    k = int((hi - lo).max()) if out else 0
    return np.minimum(lo[:, None] + np.arange(k), hi[:, None] - 1)


def _output_size(name, output_size, spatial, nd):
    sizes = (output_size,) * nd if isinstance(output_size, int) else tuple(output_size)
    if len(sizes) != nd:
        raise RuntimeError(f"{name}: output_size must be {nd}")
    return tuple(s if o is None else int(o) for o, s in zip(sizes, spatial))


def _check_adaptive(name, input, nd):
    if input.ndim not in (nd + 1, nd + 2):
        if nd == 1:
            raise RuntimeError(f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional tensor for argument #1 "
                               f"'self' (while checking arguments for {name})")
        raise RuntimeError(f"{name}(): Expected 3D or 4D tensor, but got {list(input.shape)}")


def _adaptive_avg(name, input, output_size, nd):
    _check_adaptive(name, input, nd)
    out, x = _output_size(name, output_size, input.shape[-nd:], nd), input
    if nd == 2 and all(o and s % o == 0 for s, o in zip(input.shape[-2:], out)):  # plain windows: the pool kernel
        return avg_pool2d(input, tuple(s // o for s, o in zip(input.shape[-2:], out)))
    for k in range(nd):
        dim = k - nd
        if out[k] != x.shape[dim]:
            x = along(x, dim, constant(_average_matrix(x.shape[dim], out[k]), x))
    return x


def adaptive_avg_pool1d(input, output_size):
    """Average over PyTorch's adaptive windows of the last dim: one averaging matmul."""
    return _adaptive_avg("adaptive_avg_pool1d", input, output_size, 1)


def adaptive_avg_pool2d(input, output_size):
    """Average over PyTorch's adaptive windows (any output size): avg_pool2d when the sizes divide, else an
    averaging matmul per spatial dim."""
    return _adaptive_avg("adaptive_avg_pool2d", input, output_size, 2)


def _adaptive_max(name, input, output_size, nd, return_indices):
    """Gather each output's (padded) window into a trailing axis and take max/argmax there; the argmax maps back
    to a flat position in the input plane through a constant table."""
    _check_adaptive(name, input, nd)
    out = _output_size(name, output_size, input.shape[-nd:], nd)
    spatial = tuple(input.shape[-nd:])
    windows = [_window_index(s, o) for s, o in zip(spatial, out)]
    x, lead = input, input.ndim - nd
    for k in reversed(range(nd)):  # the last dim first, so dim k still sits at lead + k
        x = x.index_select(lead + k, constant(windows[k].reshape(-1), x))
        x = x.reshape(x.shape[:lead + k] + windows[k].shape + x.shape[lead + k + 1:])
    if nd == 2:  # (..., oh, kh, ow, kw) -> (..., oh, ow, kh*kw)
        x = x.permute(*range(lead), lead, lead + 2, lead + 1, lead + 3)
        x = x.reshape(x.shape[:lead + 2] + (-1,))
    values, arg = x.max(dim=-1)
    if not return_indices:
        return values
    if nd == 1:
        table = windows[0]
    else:
        table = (windows[0][:, None, :, None] * spatial[1] + windows[1][None, :, None, :]).reshape(out + (-1,))
    flat = constant(table.reshape(-1), input)
    positions = flat.index_select(0, (constant(np.arange(math.prod(out)) * table.shape[-1], input).reshape(out)
                                      + arg).reshape(-1))
    return values, positions.reshape(arg.shape)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max over PyTorch's adaptive windows of the last dim (indices: positions along it)."""
    return _adaptive_max("adaptive_max_pool1d", input, output_size, 1, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over PyTorch's adaptive windows (indices: flat offsets into each H*W plane, like max_pool2d)."""
    return _adaptive_max("adaptive_max_pool2d", input, output_size, 2, return_indices)


# ---- interpolate --------------------------------------------------------------------------------------------------

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_LINEAR_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _spatial_arg(what, value, spatial):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * len(spatial)
    if len(values) != len(spatial):
        name, got, fmt = (("output", "output size of", "output size in (o1, o2, ...,oK)") if what == "size" else
                          ("scale_factor", "scale_factor of shape", "scale_factor in (s1, s2, ...,sK)"))
        raise ValueError(f"Input and {name} must have the same number of spatial dimensions, but got input with "
                         f"spatial dimensions of {list(spatial)} and {got} {tuple(value)}. Please provide input "
                         f"tensor in (N, C, d1, d2, ...,dK) format and {fmt} format.")
    return values


def _sizes_and_scales(input, size, scale_factor, recompute_scale_factor):
    """PyTorch's output sizes and the scales the index rules use (None: derive from in/out sizes)."""
    spatial = tuple(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        return tuple(int(s) for s in _spatial_arg("size", size, spatial)), (None,) * len(spatial)
    scales = tuple(float(s) for s in _spatial_arg("scale_factor", scale_factor, spatial))
    out = tuple(int(math.floor(s * f)) for s, f in zip(spatial, scales))
    return out, (None,) * len(spatial) if recompute_scale_factor else scales


def _ratio(size, out, scale, dtype):
    """PyTorch's compute_scales_value: 1/scale_factor when one was given, else in/out (in the compute precision)."""
    return dtype(1.0 / scale) if scale is not None and scale > 0 else dtype(size) / dtype(out)


def _nearest_index(size, out, scale, exact):
    """floor(dst * in/out) (PyTorch's float32 rule), or floor((dst + 0.5) * in/out) for nearest-exact."""
    r = _ratio(size, out, scale, np.float32)
    dst = np.arange(out, dtype=np.float32) + (np.float32(0.5) if exact else np.float32(0))
    return np.minimum(np.floor(dst * r).astype(np.int64), size - 1)


def _linear_matrix(size, out, scale, align_corners):
    """(out, in) weights of 1-d linear interpolation with PyTorch's source-index rule."""
    dst = np.arange(out, dtype=np.float64)
    if align_corners:
        src = dst * ((size - 1) / (out - 1) if out > 1 else 0.0)
    else:
        src = np.maximum(_ratio(size, out, scale, np.float64) * (dst + 0.5) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), size - 1)
    hi, frac = np.minimum(lo + 1, size - 1), src - lo
    m = np.zeros((out, size))
    np.add.at(m, (np.arange(out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(out), hi), frac)
    return m


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dims of (N, C, ...) input: nearest / nearest-exact by index_select, linear / bilinear by
    one interpolation matmul per dim."""
    if mode not in _MODES:
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for "
                                  f"the modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | area | "
                                  f"nearest-exact (got {mode})")
    if align_corners is not None and mode not in _LINEAR_DIMS and mode != "bicubic":
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    out, scales = _sizes_and_scales(input, size, scale_factor, recompute_scale_factor)
    if mode in _LINEAR_DIMS and input.ndim != _LINEAR_DIMS[mode] + 2:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {_LINEAR_DIMS[mode] + 2}D input")
    if mode not in ("nearest", "nearest-exact", "linear", "bilinear") or antialias:
        raise NotImplementedError(f"interpolate: mode {mode!r}{' with antialias' if antialias else ''} is not "
                                  f"supported yet (nearest, nearest-exact, linear, bilinear)")
    spatial = tuple(input.shape[2:])
    if min(spatial + out, default=1) <= 0:
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input "
                           f"({', '.join(f'{n}: {s}' for n, s in zip('DHW'[-len(out):], spatial))}) output "
                           f"({', '.join(f'{n}: {s}' for n, s in zip('DHW'[-len(out):], out))})")
    x = input
    for k in range(len(out)):
        dim = k - len(out)
        if mode.startswith("nearest"):
            if out[k] != spatial[k] or scales[k] not in (None, 1.0):
                x = x.index_select(x.ndim + dim, constant(_nearest_index(spatial[k], out[k], scales[k],
                                                                         mode == "nearest-exact"), x))
        else:
            x = along(x, dim, constant(_linear_matrix(spatial[k], out[k], scales[k], bool(align_corners)), x))
    return x


# ---- pixel shuffle ------------------------------------------------------------------------------------------------


def pixel_shuffle(input, upscale_factor):
    """(..., C*r*r, H, W) -> (..., C, H*r, W*r): each r*r channel block becomes an r x r spatial tile."""
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                           f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """(..., C, H*r, W*r) -> (..., C*r*r, H, W): the inverse of pixel_shuffle."""
    r = int(downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    for name, size, d in (("height", h, -2), ("width", w, -1)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {name} to be divisible by downscale_factor, but "
                               f"input.size({d})={size} is not divisible by {r}")
    n = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


# ---- max unpooling ------------------------------------------------------------------------------------------------


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of max_pool2d: each value scattered to its flat H*W index in a zero plane."""
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None else _pair(stride, "stride")
    p = _pair(padding, "padding")
    default = tuple((input.shape[-2 + a] - 1) * s[a] - 2 * p[a] + k[a] for a in range(2))
    if output_size is None:
        out = default
    else:
        out = tuple(int(o) for o in tuple(output_size)[-2:])
        for a in range(2):
            lo, hi = default[a] - s[a], default[a] + s[a]
            if not lo < out[a] < hi:
                raise ValueError(f'invalid output_size "{out}" (dim {a} must be between {lo} and {hi})')
    lead = tuple(input.shape[:-2])
    plane = input.new_zeros(lead + (out[0] * out[1],))
    flat = plane.scatter(-1, indices.reshape(lead + (-1,)), input.reshape(lead + (-1,)))
    return flat.reshape(lead + out)
