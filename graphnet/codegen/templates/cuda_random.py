"""rand_uniform / rand_normal / rng_advance on the GPU: counter-based Philox4x32-10 keyed by the [seed, offset] state.

Value number v of a stream (a draw at state offset `off` covers v = off .. off + n - 1) comes from Philox block
v // P, lane v % P, with P values per block: 4 float32 uniforms (24-bit mantissas), 2 float64 uniforms (53-bit),
4 float32 or 2 float64 normals (Box-Muller on pairs of those uniforms). The key is the 64-bit seed, the counter the
block number, so a draw depends only on the state and consecutive draws continue one stream: draw(off, n) followed
by draw(off + n, m) equals draw(off, n + m), and rng_advance moves the offset by n exactly as the CPU op does. The
state is read on the device (no host sync); the stream differs from the CPU's, as PyTorch's GPU stream does. This is
the kernel source; the launches are runtime/cuda_kernels/random.py's.
"""
import functools

from ..cuda import load

SOURCE = '''import math

import numpy as np
from numba import cuda

LO = np.uint64(0xFFFFFFFF)
S32 = np.uint64(32)
M0 = np.uint64(0xD2511F53)
M1 = np.uint64(0xCD9E8D57)
W0 = np.uint64(0x9E3779B9)
W1 = np.uint64(0xBB67AE85)
S5 = np.uint64(5)
S6 = np.uint64(6)
S8 = np.uint64(8)
TWO_PI = 6.283185307179586


@cuda.jit(device=True)
def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 (Salmon et al. 2011) on 32-bit words held in uint64."""
    for _ in range(10):
        p0 = M0 * c0
        p1 = M1 * c2
        c0, c1, c2, c3 = (p1 >> S32) ^ c1 ^ k0, p1 & LO, (p0 >> S32) ^ c3 ^ k1, p0 & LO
        k0 = (k0 + W0) & LO
        k1 = (k1 + W1) & LO
    return c0, c1, c2, c3


@cuda.jit(device=True)
def u24(a):
    return float(a >> S8) * 5.9604644775390625e-08


@cuda.jit(device=True)
def u53(a, b):
    return (float(a >> S5) * 67108864.0 + float(b >> S6)) * 1.1102230246251565e-16


@cuda.jit(device=True)
def box_muller(u, w):
    """Two independent N(0, 1) values from uniforms u, w in [0, 1)."""
    r = math.sqrt(-2.0 * math.log(1.0 - u))
    return r * math.cos(TWO_PI * w), r * math.sin(TWO_PI * w)


@cuda.jit(device=True)
def lanes(a, b, c, d, kind):
    """The block's values: kind 0 = 4 uniform24, 1 = 2 uniform53, 2 = 4 normal24, 3 = 2 normal53."""
    if kind == 0:
        return u24(a), u24(b), u24(c), u24(d)
    if kind == 1:
        return u53(a, b), u53(c, d), 0.0, 0.0
    if kind == 2:
        z0, z1 = box_muller(u24(a), u24(b))
        z2, z3 = box_muller(u24(c), u24(d))
        return z0, z1, z2, z3
    z0, z1 = box_muller(u53(a, b), u53(c, d))
    return z0, z1, 0.0, 0.0


@cuda.jit(cache=True)
def draw(state, out, n, per, kind):
    seed = np.uint64(state[0])
    off = state[1]
    k0, k1 = seed & LO, seed >> S32
    for q in range(off // per + cuda.grid(1), (off + n - 1) // per + 1, cuda.gridsize(1)):
        blk = np.uint64(q)
        a, b, c, d = philox(blk & LO, blk >> S32, np.uint64(0), np.uint64(0), k0, k1)
        vals = lanes(a, b, c, d, kind)
        for lane in range(per):
            i = q * per + lane - off
            if 0 <= i < n:
                out[i] = vals[lane]


@cuda.jit(cache=True)
def advance(state, out, n):
    if cuda.grid(1) == 0:
        out[0] = state[0]
        out[1] = state[1] + n
'''
# (values per Philox block, lanes kind) by (op, dtype)
KINDS = {("rand_uniform", "float32"): (4, 0), ("rand_uniform", "float64"): (2, 1),
         ("rand_normal", "float32"): (4, 2), ("rand_normal", "float64"): (2, 3)}


@functools.lru_cache(maxsize=None)
def kernel(name):
    return load(SOURCE, name)
