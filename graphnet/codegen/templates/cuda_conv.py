"""conv2d forward and both gradients on the GPU, the kernel source: im2col (gather), col2im (a gather) and the sum over
samples of the weight gradient's parts; the tiled GEMM between them is cuda_gemm's.

Layouts match the CPU kernels: columns are (N, G, Cg*kh*kw, Ho*Wo), i.e. (N, C, kh, kw, Ho, Wo) row-major, so one
GEMM batched over (n, g) with strided operands does every group of every sample. No atomics: col2im gathers. The
host side (buffers, launches) is runtime/cuda_kernels/conv.py.
"""
import functools

from ..cuda import load

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
def kernel(name):
    return load(SOURCE, name)
