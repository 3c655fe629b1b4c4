"""Advanced indexing, gather, their scatter-add adjoints, index_put and argmax/argmin on the GPU.

Every indexing op is one mapping `out element t -> buffer offset`: t is split over the result shape, the basic
part of the index contributes strides of the view, and each advanced row j adds idx[j, b] * stride (b = t's place
in the index's broadcast block; negative entries wrap, except in gather). `take` reads through the mapping,
`put`/`put_add` write through it (atomics where repeated indices must add up). A bad index sets a device flag and
skips the element; the host then reruns the op's NumPy impl on host copies, so the error is exactly the CPU's.
argmax/argmin keep the first extreme, with NaN counting as the extreme (PyTorch), a thread per output or a block
tree for long rows.
"""
import functools

import numpy as np

from ...ir.ops import OPS
from ...ir.ops.indexing import basic_index
from ...ir.ops.util import norm_dim
from ...runtime import storage
from ..cuda import grid_for, launch_limits, load, use_tree

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
_ATOMIC = {"int32", "int64", "uint32", "uint64", "float32", "float64"}
_FLAGS = {}


@functools.lru_cache(maxsize=None)
def _kernel(name):
    scatters = "".join(_SCATTER.format(name=k, store=v) for k, v in _STORES.items())
    return load(SOURCE.replace("{scatters}", scatters), name)


def _backend():
    from ...runtime import cuda_backend

    return cuda_backend


def _tup(values, pad):
    """A kernel tuple argument: never empty (numba types a 0-tuple apart), padded with a harmless value."""
    return tuple(int(v) for v in values) or (pad,)


# ---- the mapping: result element -> buffer offset ---------------------------------------------------------------
def _index_mapping(shape, index, idx_shape, dims):
    """(result shape, mapping args) of view[advanced] for view = buffer[basic `index`], NumPy's placement rule."""
    cb = _backend()
    base, vstrides, vshape = cb._geometry(shape, lambda v: v[basic_index(v.shape, index)[0]])
    rest = [(vshape[d], vstrides[d], 0) for d in range(len(vshape)) if d not in dims]
    bshape = tuple(idx_shape[1:]) if dims else ()
    block = [(n, 0, s) for n, s in zip(bshape, cb._strides(bshape))]
    lo = min(dims, default=0)
    at = lo if sorted(dims) == list(range(lo, lo + len(dims))) else 0
    rows = [(vstrides[d], vshape[d]) for d in dims]
    return _pack(rest[:at] + block + rest[at:], base, int(np.prod(bshape, dtype=np.int64)), rows, True)


def _gather_mapping(shape, idx_shape, dim):
    """gather along `dim`: the result has the index's shape, one advanced row over the whole index."""
    d, strides = norm_dim("gather", dim, len(shape)), _backend()._strides
    xs = strides(shape)
    per_dim = [(n, 0 if k == d else xs[k], s) for k, (n, s) in enumerate(zip(idx_shape, strides(idx_shape)))]
    return _pack(per_dim, 0, int(np.prod(idx_shape, dtype=np.int64)), [(xs[d], shape[d])], False)


def _pack(per_dim, base, nb, rows, wrap):
    sizes, sstr, bstr = zip(*per_dim) if per_dim else ((), (), ())
    args = (_tup(sizes, 1), _tup(sstr, 0), _tup(bstr, 0), int(base), max(nb, 1), len(rows),
            _tup([r[0] for r in rows], 0), _tup([r[1] for r in rows], 1), bool(wrap))
    return tuple(sizes), args


# ---- launches and the error path ----------------------------------------------------------------------------------
def error_flag():
    flag = _FLAGS.get(0)
    if flag is None:
        flag = _FLAGS[0] = storage.to_device(np.zeros(1, np.int32))
    return flag


def raise_if_flagged(name, arrays, attrs):
    """After a launch: a flagged bad index reruns the NumPy impl on host copies, which raises the CPU's error."""
    flag = error_flag()
    if not flag.copy_to_host()[0]:
        return
    flag.copy_to_device(np.zeros(1, np.int32))
    OPS[name].impl(*(storage.to_host(a) for a in arrays), **attrs)
    raise RuntimeError(f"{name}: internal error, the CUDA kernel flagged an out-of-range index the CPU accepts")


def _take(name, src, idx, mapping, arrays, attrs):
    shape, args = mapping
    out = storage.empty(shape, src.dtype)
    if out.size:
        _kernel("take")[grid_for(out.size)](storage.flat(src), storage.flat(out), storage.flat(idx), error_flag(),
                                           out.size, *args)
        raise_if_flagged(name, arrays, attrs)
    return [out]


def _scatter(name, out, vals, vstrides, idx, mapping, accumulate, arrays, attrs):
    """out[mapping] = vals (or += with atomics); vals read at `vstrides` over the mapping's shape."""
    shape, args = mapping
    n = int(np.prod(shape, dtype=np.int64))
    if n:
        kern = _kernel("put_add" if accumulate else "put")
        kern[grid_for(n)](storage.flat(vals), storage.flat(out), storage.flat(idx), error_flag(), n,
                          _tup(vstrides, 0), *args)
        raise_if_flagged(name, arrays, attrs)
    return [out]


def _zeros(shape, dtype):
    return _backend()._fill(storage.empty(tuple(shape), dtype), 0)


def _host_if_no_atomics(name, arrays, attrs, types):
    """Scatter-adds need cuda.atomic.add, which has no bool/int8/int16/uint8/float16 form: those run on the host."""
    return _backend()._fallback(OPS[name], arrays, attrs, types)


# ---- op handlers: (arrays, attrs, out_types) -> [device arrays] ------------------------------------------------
def index(arrays, attrs, types):
    x, idx = arrays
    return _take("index", x, idx, _index_mapping(x.shape, attrs["index"], idx.shape, attrs["dims"]), arrays, attrs)


def gather(arrays, attrs, types):
    x, idx = arrays
    return _take("gather", x, idx, _gather_mapping(x.shape, idx.shape, attrs["dim"]), arrays, attrs)


def index_backward(arrays, attrs, types):
    g, idx = arrays
    if np.dtype(g.dtype).name not in _ATOMIC:
        return _host_if_no_atomics("index_backward", arrays, attrs, types)
    mapping = _index_mapping(tuple(attrs["shape"]), attrs["index"], idx.shape, attrs["dims"])
    out = _zeros(attrs["shape"], g.dtype)
    return _scatter("index_backward", out, g, _backend()._strides(g.shape), idx, mapping, True, arrays, attrs)


def gather_backward(arrays, attrs, types):
    g, idx = arrays
    if np.dtype(g.dtype).name not in _ATOMIC:
        return _host_if_no_atomics("gather_backward", arrays, attrs, types)
    mapping = _gather_mapping(tuple(attrs["shape"]), idx.shape, attrs["dim"])
    out = _zeros(attrs["shape"], g.dtype)
    return _scatter("gather_backward", out, g, _backend()._strides(g.shape), idx, mapping, True, arrays, attrs)


def index_put(arrays, attrs, types):
    x, idx, v = arrays
    accumulate = bool(attrs.get("accumulate", False))
    if accumulate and np.dtype(x.dtype).name not in _ATOMIC:
        return _host_if_no_atomics("index_put", arrays, attrs, types)
    cb = _backend()
    mapping = _index_mapping(x.shape, attrs["index"], idx.shape, attrs["dims"])
    out = cb._copy_view(x, lambda a: a)
    vstrides = cb._broadcast(v, mapping[0])[2]
    return _scatter("index_put", out, v, vstrides, idx, mapping, accumulate, arrays, attrs)


def _arg(is_max):
    def run(arrays, attrs, types):
        x, dim = arrays[0], attrs.get("dim")
        outer, r, inner = 1, x.size, 1
        if dim is not None and x.ndim:
            d = norm_dim("argmax" if is_max else "argmin", dim, x.ndim)
            outer, r = int(np.prod(x.shape[:d], dtype=np.int64)), x.shape[d]
            inner = int(np.prod(x.shape[d + 1:], dtype=np.int64))
        out = storage.empty(types[0].shape, np.int64)
        nout = outer * inner
        if nout:
            threads, max_blocks = launch_limits()
            tree = use_tree(nout, r)
            grid = (min(nout, max_blocks), threads) if tree else grid_for(nout)
            _kernel("arg_block" if tree else "arg_thread")[grid](storage.flat(x), storage.flat(out), nout, r, inner,
                                                                  is_max)
        return [out]

    return run


argmax, argmin = _arg(True), _arg(False)
HANDLERS = {"index": index, "index_backward": index_backward, "index_put": index_put, "gather": gather,
            "gather_backward": gather_backward, "argmax": argmax, "argmin": argmin}
