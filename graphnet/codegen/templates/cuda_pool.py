"""max/avg pooling forward and backward on the GPU, over (P, H, W) planes, matching the CPU kernels' semantics.

max_pool2d: a later tap wins only if strictly greater (or NaN), indices are flat offsets into each H*W plane; its
backward scatters with atomics (windows may overlap). avg_pool2d's backward gathers (no atomics). This is the
kernel source; the launches are runtime/cuda_kernels/pool.py's.
"""
import functools

from ..cuda import load

SOURCE = '''import math

from numba import cuda


@cuda.jit(device=True)
def divisor(y0, z0, h, w, kh, kw, ph, pw, include_pad, override):
    if override != 0:
        return override
    y1, z1 = min(y0 + kh, h + ph), min(z0 + kw, w + pw)
    if include_pad:
        return (y1 - y0) * (z1 - z0)
    return (min(y1, h) - max(y0, 0)) * (min(z1, w) - max(z0, 0))


@cuda.jit(cache=True)
def max_fwd(x, out, idx, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw):
    for i in range(cuda.grid(1), total, cuda.gridsize(1)):
        oz = i % wo
        oy = (i // wo) % ho
        base = (i // (wo * ho)) * h * w
        best = -math.inf
        arg = 0
        for t in range(kh * kw):
            y, z = oy * sh - ph + (t // kw) * dh, oz * sw - pw + (t % kw) * dw
            v = x[base + y * w + z] if 0 <= y < h and 0 <= z < w else -math.inf
            if t == 0 or v > best or v != v:
                best, arg = v, y * w + z
        out[i] = best
        idx[i] = arg


@cuda.jit(cache=True)
def max_bwd(g, idx, dx, total, hw, howo):
    for i in range(cuda.grid(1), total, cuda.gridsize(1)):
        cuda.atomic.add(dx, (i // howo) * hw + idx[i], g[i])


@cuda.jit(cache=True)
def avg_fwd(x, out, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw, include_pad, override):
    for i in range(cuda.grid(1), total, cuda.gridsize(1)):
        oz = i % wo
        oy = (i // wo) % ho
        base = (i // (wo * ho)) * h * w
        y0, z0 = oy * sh - ph, oz * sw - pw
        acc = x[0] * 0
        for y in range(max(y0, 0), min(y0 + kh, h)):
            for z in range(max(z0, 0), min(z0 + kw, w)):
                acc += x[base + y * w + z]
        out[i] = acc / divisor(y0, z0, h, w, kh, kw, ph, pw, include_pad, override)


@cuda.jit(cache=True)
def avg_bwd(g, dx, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw, include_pad, override):
    for i in range(cuda.grid(1), total, cuda.gridsize(1)):
        z = i % w
        y = (i // w) % h
        base = (i // (w * h)) * ho * wo
        acc = g[0] * 0
        for oy in range(max(0, (y + ph - kh) // sh + 1), min(ho, (y + ph) // sh + 1)):
            for oz in range(max(0, (z + pw - kw) // sw + 1), min(wo, (z + pw) // sw + 1)):
                y0, z0 = oy * sh - ph, oz * sw - pw
                acc += g[base + oy * wo + oz] / divisor(y0, z0, h, w, kh, kw, ph, pw, include_pad, override)
        dx[i] = acc
'''


@functools.lru_cache(maxsize=None)
def kernel(name):
    return load(SOURCE, name)
