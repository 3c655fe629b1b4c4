"""Tiled shared-memory GEMM for numba.cuda with a bias/ReLU epilogue, batched over two strided batch dims.

C[b, m, n] = act(sum_k A[b, m, k] * B[b, k, n] + bias), b = (b1, b2) with b2 fastest. Operands are flat 1-D device
buffers read through element strides, so transposes (A^T, B^T) and broadcast batches (stride 0) cost no copies.
bias_mode: 0 none, 1 per column (Linear's bias[n]), 2 per row (conv's bias[m]). One kernel per dtype and tile.
"""
import functools

import numpy as np

from ...runtime import storage
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
def _kernel(dtype_name, tile):
    return load(SOURCE.format(tile=tile, nt=NUMBA_TYPES[dtype_name], npt=NP_TYPES[dtype_name]))


@functools.lru_cache(maxsize=None)
def _no_bias(dtype_name):
    return storage.to_device(np.zeros(1, dtype_name))


def gemm_strided(a, b, out, m, n, k, batch, a_strides, b_strides, bias=None, bias_mode=0, relu=False):
    """Launch the GEMM over flat buffers: batch = (nb1, nb2); a_strides = (s1, s2, sm, sk); b_strides likewise."""
    dtype = np.dtype(out.dtype).name
    if m * n * batch[0] * batch[1] == 0:
        return out
    tile = tile_size()
    grid = (-(-n // tile), -(-m // tile), batch[0] * batch[1])
    if bias is None:
        bias, bias_mode = _no_bias(dtype), 0
    _kernel(dtype, tile)[grid, (tile, tile)](a, b, out, bias, m, n, k, batch[1], *a_strides, *b_strides, bias_mode,
                                             int(bool(relu)))
    return out


def matmul2d(a, b, bias=None, relu=False):
    """relu?(a @ b + bias) for contiguous 2-D device arrays a (M, K), b (K, N), bias (N,): a new (M, N) array."""
    (m, k), n = a.shape, b.shape[1]
    out = storage.empty((m, n), a.dtype)
    flat = storage.flat(out)
    gemm_strided(storage.flat(a), storage.flat(b), flat, m, n, k, (1, 1), (0, 0, k, 1), (0, 0, n, 1),
                 bias=None if bias is None else storage.flat(bias), bias_mode=1 if bias is not None else 0, relu=relu)
    return out
