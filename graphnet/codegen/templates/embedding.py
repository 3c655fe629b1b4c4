"""Embedding library kernels over a contiguous (rows, dim) table and flat int64 ids: the row lookup and its
adjoint, a row scatter-add (repeated ids add up). A bad id raises KernelIndexError; the Program then reruns the
NumPy impls for the eager error naming it."""
from numba import njit

from .softmax import KernelIndexError


@njit(cache=True)
def embedding_rows(weight, ids, out):
    """out[i, :] = weight[ids[i], :]."""
    n = weight.shape[0]
    for i in range(ids.shape[0]):
        r = ids[i]
        if r < 0 or r >= n:
            raise KernelIndexError("graphnet: an embedding id is out of range")
        out[i, :] = weight[r, :]


@njit(cache=True)
def embedding_rows_backward(g, ids, out):
    """out = 0; out[ids[i], :] += g[i, :]."""
    out[:] = 0
    n = out.shape[0]
    for i in range(ids.shape[0]):
        r = ids[i]
        if r < 0 or r >= n:
            raise KernelIndexError("graphnet: an embedding id is out of range")
        out[r, :] += g[i, :]
