"""Tiled shared-memory GEMM for numba.cuda with a bias/ReLU epilogue, batched over two strided batch dims.

C[b, m, n] = act(sum_k A[b, m, k] * B[b, k, n] + bias), b = (b1, b2) with b2 fastest. Operands are flat 1-D device
buffers read through element strides, so transposes (A^T, B^T) and broadcast batches (stride 0) cost no copies.
bias_mode: 0 none, 1 per column (Linear's bias[n]), 2 per row (conv's bias[m]). One kernel per dtype and tile.
The launch (grid, bias buffer) is runtime/cuda_kernels/gemm.py's.
"""
import functools

from ..cpu import NP_TYPES, NUMBA_TYPES
from ..cuda import load

SOURCE = '''import numpy as np
from numba import cuda
from numba import types

TILE = {tile}


@cuda.jit(cache=True)
def kernel(a, b, c, bias, m, n, k, nb2, sa1, sa2, sam, sak, sb1, sb2, sbk, sbn, bias_mode, relu):
    ta = cuda.shared.array((TILE, TILE), types.{nt})
    tb = cuda.shared.array((TILE, TILE), types.{nt})
    tx, ty, bz = cuda.threadIdx.x, cuda.threadIdx.y, cuda.blockIdx.z
    row, col = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    abase = (bz // nb2) * sa1 + (bz % nb2) * sa2
    bbase = (bz // nb2) * sb1 + (bz % nb2) * sb2
    acc = {npt}(0)
    for t in range((k + TILE - 1) // TILE):
        ka, kb = t * TILE + tx, t * TILE + ty
        ta[ty, tx] = a[abase + row * sam + ka * sak] if row < m and ka < k else {npt}(0)
        tb[ty, tx] = b[bbase + kb * sbk + col * sbn] if kb < k and col < n else {npt}(0)
        cuda.syncthreads()
        for kk in range(TILE):
            acc += ta[ty, kk] * tb[kk, tx]
        cuda.syncthreads()
    if row < m and col < n:
        if bias_mode == 1:
            acc += bias[col]
        elif bias_mode == 2:
            acc += bias[row]
        if relu and acc < 0:
            acc = {npt}(0)
        c[bz * m * n + row * n + col] = acc
'''


def tile_size():
    from numba import config

    return 8 if config.ENABLE_CUDASIM else 16


@functools.lru_cache(maxsize=None)
def kernel(dtype_name, tile):
    return load(SOURCE.format(tile=tile, nt=NUMBA_TYPES[dtype_name], npt=NP_TYPES[dtype_name]))
