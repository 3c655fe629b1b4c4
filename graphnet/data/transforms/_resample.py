"""Resampling weights along one image axis with PyTorch's interpolate(align_corners=False) rules, antialiased
(PyTorch's _upsample_*_aa: the filter widened by the downscale factor, normalised over the taps inside the image)
or not; cached per (in, out, mode, antialias) since a dataset resizes every image between the same sizes."""
import functools

import numpy as np


def _triangle(x):
    return np.maximum(0.0, 1.0 - np.abs(x))


def _cubic(a):
    """The cubic convolution kernel with coefficient a (PyTorch: -0.75 plain, -0.5 antialiased)."""

    def kernel(x):
        x = np.abs(x)
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = (((x - 5) * x + 8) * x - 4) * a
        return np.where(x < 1, near, np.where(x < 2, far, 0.0))

    return kernel


_FILTERS = {"bilinear": (1, _triangle), "bicubic": (2, _cubic(-0.75))}
_AA_FILTERS = {"bilinear": (1, _triangle), "bicubic": (2, _cubic(-0.5))}


def nearest_index(size, out, exact):
    """Source index of each output cell: floor(dst * in/out), or floor((dst + 0.5) * in/out) for nearest-exact,
    in float32 as PyTorch computes it."""
    ratio = np.float32(size) / np.float32(out)
    dst = np.arange(out, dtype=np.float32) + np.float32(0.5 if exact else 0.0)
    return np.minimum(np.floor(dst * ratio).astype(np.int64), size - 1)


@functools.lru_cache(maxsize=64)
def weights(size, out, mode, antialias):
    """(out, size) float64 weights of bilinear or bicubic resampling from `size` to `out` cells (read-only)."""
    scale = size / out
    dst = np.arange(out, dtype=np.float64)
    if antialias:
        half, kernel = _AA_FILTERS[mode]
        support, inv = (half * scale, 1.0 / scale) if scale >= 1.0 else (float(half), 1.0)
        center = scale * (dst + 0.5)
        lo = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
        hi = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), size)
        taps = np.arange(size)[None, :]
        m = kernel((taps - center[:, None] + 0.5) * inv) * ((taps >= lo[:, None]) & (taps < hi[:, None]))
        total = m.sum(axis=1, keepdims=True)
        m = np.divide(m, total, out=np.zeros_like(m), where=total != 0)
    else:
        half, kernel = _FILTERS[mode]
        src = scale * (dst + 0.5) - 0.5
        src = np.maximum(src, 0.0) if mode == "bilinear" else src  # PyTorch clamps the linear source index only
        base = np.floor(src).astype(np.int64)
        m = np.zeros((out, size))
        for k in range(1 - half, half + 1):  # the 2 (linear) or 4 (cubic) taps, edge indices clamped
            np.add.at(m, (np.arange(out), np.clip(base + k, 0, size - 1)), kernel(src - (base + k)))
    m.setflags(write=False)
    return m
