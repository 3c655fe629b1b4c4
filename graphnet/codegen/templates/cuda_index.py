"""Advanced indexing, gather, their scatter-add adjoints, index_put and argmax/argmin on the GPU.

Every indexing op is one mapping `out element t -> buffer offset`: t is split over the result shape, the basic
part of the index contributes strides of the view, and each advanced row j adds idx[j, b] * stride (b = t's place
in the index's broadcast block; negative entries wrap, except in gather). `take` reads through the mapping,
`put`/`put_add` write through it (atomics where repeated indices must add up). A bad index sets a device flag and
skips the element; the host then reruns the op's NumPy impl on host copies, so the error is exactly the CPU's.
argmax/argmin keep the first extreme, with NaN counting as the extreme (PyTorch), a thread per output or a block
tree for long rows. This is the kernel source; the mapping arguments, launches and error path are
runtime/cuda_kernels/index.py's.
"""
import functools

from ..cuda import load

SOURCE = '''from numba import cuda
from numba import types


@cuda.jit(device=True)
def locate(t, shape, sstride, bstride, base, idx, nb, k, astride, asize, wrap, flag):
    """Buffer offset of result element t, or -1 (flag set) when one of its indices is out of range (negative ones
    count from the end when `wrap`: x[idx] does, gather does not)."""
    off = base
    b = 0
    for d in range(len(shape) - 1, -1, -1):
        c = t % shape[d]
        t //= shape[d]
        off += c * sstride[d]
        b += c * bstride[d]
    for j in range(k):
        i = idx[j * nb + b]
        if i < 0 and wrap:
            i += asize[j]
        if i < 0 or i >= asize[j]:
            flag[0] = 1
            return -1
        off += i * astride[j]
    return off


@cuda.jit(device=True)
def dot(t, shape, stride):
    off = 0
    for d in range(len(shape) - 1, -1, -1):
        off += (t % shape[d]) * stride[d]
        t //= shape[d]
    return off


@cuda.jit(cache=True)
def take(src, out, idx, flag, n, shape, sstride, bstride, base, nb, k, astride, asize, wrap):
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        o = locate(t, shape, sstride, bstride, base, idx, nb, k, astride, asize, wrap, flag)
        if o >= 0:
            out[t] = src[o]
{scatters}

@cuda.jit(device=True)
def pick(x, base, inner, a, b, is_max):
    """The preferred of positions a, b (-1 = none): the extreme value, NaN first, the lower index on ties."""
    if a < 0:
        return b
    if b < 0:
        return a
    u = x[base + a * inner]
    v = x[base + b * inner]
    if u != u or v != v:
        return a if u != u and (v == v or a < b) else b
    if u == v:
        return min(a, b)
    return a if (u > v) == is_max else b


@cuda.jit(cache=True)
def arg_thread(x, out, nout, r, inner, is_max):
    for o in range(cuda.grid(1), nout, cuda.gridsize(1)):
        base = (o // inner) * r * inner + o % inner
        best = 0
        for j in range(1, r):
            best = pick(x, base, inner, best, j, is_max)
        out[o] = best


@cuda.jit(cache=True)
def arg_block(x, out, nout, r, inner, is_max):
    sm = cuda.shared.array(256, types.int64)
    tid = cuda.threadIdx.x
    for o in range(cuda.blockIdx.x, nout, cuda.gridDim.x):
        base = (o // inner) * r * inner + o % inner
        best = -1
        for j in range(tid, r, cuda.blockDim.x):
            best = pick(x, base, inner, best, j, is_max)
        sm[tid] = best
        cuda.syncthreads()
        s = cuda.blockDim.x // 2
        while s > 0:
            if tid < s:
                sm[tid] = pick(x, base, inner, sm[tid], sm[tid + s], is_max)
            cuda.syncthreads()
            s //= 2
        if tid == 0:
            out[o] = sm[0]
        cuda.syncthreads()
'''
_SCATTER = '''

@cuda.jit(cache=True)
def {name}(vals, out, idx, flag, n, vstride, shape, sstride, bstride, base, nb, k, astride, asize, wrap):
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        o = locate(t, shape, sstride, bstride, base, idx, nb, k, astride, asize, wrap, flag)
        if o >= 0:
            {store}
'''
_STORES = {"put": "out[o] = vals[dot(t, shape, vstride)]",
           "put_add": "cuda.atomic.add(out, o, vals[dot(t, shape, vstride)])"}
# the dtypes cuda.atomic.add (put_add) supports
ATOMIC = {"int32", "int64", "uint32", "uint64", "float32", "float64"}


@functools.lru_cache(maxsize=None)
def kernel(name):
    scatters = "".join(_SCATTER.format(name=k, store=v) for k, v in _STORES.items())
    return load(SOURCE.replace("{scatters}", scatters), name)
