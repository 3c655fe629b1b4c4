"""The tiled GEMM on flat device buffers (grid, bias buffer, launch) and matmul2d on 2-D device arrays."""
import functools

import numpy as np

from ...codegen.templates.cuda_gemm import kernel, tile_size
from .. import storage


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
    kernel(dtype, tile)[grid, (tile, tile)](a, b, out, bias, m, n, k, batch[1], *a_strides, *b_strides, bias_mode,
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
