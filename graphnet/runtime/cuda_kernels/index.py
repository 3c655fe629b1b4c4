"""Indexing, gather, their scatter-add adjoints, index_put and argmax/argmin on device arrays: codegen's cuda_index
kernels launched, a flagged bad index rerun on the host so it raises the CPU's error."""
import numpy as np

from ...codegen.cuda import grid_for, launch_limits, use_tree
from ...codegen.templates.cuda_index import ATOMIC, kernel
from ...ir.ops import OPS
from ...ir.ops.indexing import basic_index
from ...ir.ops.util import norm_dim
from .. import cuda_backend, storage

_FLAGS = {}


def _tup(values, pad):
    """A kernel tuple argument: never empty (numba types a 0-tuple apart), padded with a harmless value."""
    return tuple(int(v) for v in values) or (pad,)


# ---- the mapping: result element -> buffer offset ---------------------------------------------------------------
def _index_mapping(shape, index, idx_shape, dims, wrap=True):
    """(result shape, mapping args) of view[advanced] for view = buffer[basic `index`], NumPy's placement rule."""
    base, vstrides, vshape = cuda_backend._geometry(shape, lambda v: v[basic_index(v.shape, index)[0]])
    rest = [(vshape[d], vstrides[d], 0) for d in range(len(vshape)) if d not in dims]
    bshape = tuple(idx_shape[1:]) if dims else ()
    block = [(n, 0, s) for n, s in zip(bshape, cuda_backend._strides(bshape))]
    lo = min(dims, default=0)
    at = lo if sorted(dims) == list(range(lo, lo + len(dims))) else 0
    rows = [(vstrides[d], vshape[d]) for d in dims]
    return _pack(rest[:at] + block + rest[at:], base, int(np.prod(bshape, dtype=np.int64)), rows, wrap)


def _gather_mapping(shape, idx_shape, dim):
    """gather along `dim`: the result has the index's shape, one advanced row over the whole index."""
    d, strides = norm_dim("gather", dim, len(shape)), cuda_backend._strides
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
        kernel("take")[grid_for(out.size)](storage.flat(src), storage.flat(out), storage.flat(idx), error_flag(),
                                          out.size, *args)
        raise_if_flagged(name, arrays, attrs)
    return [out]


def _scatter(name, out, vals, vstrides, idx, mapping, accumulate, arrays, attrs):
    """out[mapping] = vals (or += with atomics); vals read at `vstrides` over the mapping's shape."""
    shape, args = mapping
    n = int(np.prod(shape, dtype=np.int64))
    if n:
        kern = kernel("put_add" if accumulate else "put")
        kern[grid_for(n)](storage.flat(vals), storage.flat(out), storage.flat(idx), error_flag(), n,
                          _tup(vstrides, 0), *args)
        raise_if_flagged(name, arrays, attrs)
    return [out]


def _zeros(shape, dtype):
    return cuda_backend._fill(storage.empty(tuple(shape), dtype), 0)


def _host_if_no_atomics(name, arrays, attrs, types):
    """Scatter-adds need cuda.atomic.add, which has no bool/int8/int16/uint8/float16 form: those run on the host."""
    return cuda_backend._fallback(OPS[name], arrays, attrs, types)


# ---- op handlers: (arrays, attrs, out_types) -> [device arrays] ------------------------------------------------
def index(arrays, attrs, types):
    x, idx = arrays
    return _take("index", x, idx, _index_mapping(x.shape, attrs["index"], idx.shape, attrs["dims"]), arrays, attrs)


def gather(arrays, attrs, types):
    x, idx = arrays
    return _take("gather", x, idx, _gather_mapping(x.shape, idx.shape, attrs["dim"]), arrays, attrs)


def index_backward(arrays, attrs, types):
    g, idx = arrays
    if np.dtype(g.dtype).name not in ATOMIC:
        return _host_if_no_atomics("index_backward", arrays, attrs, types)
    mapping = _index_mapping(tuple(attrs["shape"]), attrs["index"], idx.shape, attrs["dims"])
    out = _zeros(attrs["shape"], g.dtype)
    return _scatter("index_backward", out, g, cuda_backend._strides(g.shape), idx, mapping, True, arrays, attrs)


def gather_backward(arrays, attrs, types):
    g, idx = arrays
    if np.dtype(g.dtype).name not in ATOMIC:
        return _host_if_no_atomics("gather_backward", arrays, attrs, types)
    mapping = _gather_mapping(tuple(attrs["shape"]), idx.shape, attrs["dim"])
    out = _zeros(attrs["shape"], g.dtype)
    return _scatter("gather_backward", out, g, cuda_backend._strides(g.shape), idx, mapping, True, arrays, attrs)


def index_put(arrays, attrs, types):
    x, idx, v = arrays
    accumulate = bool(attrs.get("accumulate", False))
    if accumulate and np.dtype(x.dtype).name not in ATOMIC:
        return _host_if_no_atomics("index_put", arrays, attrs, types)
    mapping = _index_mapping(x.shape, attrs["index"], idx.shape, attrs["dims"])
    out = cuda_backend._copy_view(x, lambda a: a)
    vstrides = cuda_backend._broadcast(v, mapping[0])[2]
    return _scatter("index_put", out, v, vstrides, idx, mapping, accumulate, arrays, attrs)


def _rows_mapping(table_shape, ids):
    """weight[ids] as an index mapping: one advanced row over dim 0, no negative wrap-around (embedding)."""
    return _index_mapping(tuple(table_shape), (), (1,) + tuple(ids.shape), (0,), wrap=False)


def embedding(arrays, attrs, types):
    w, ids = arrays
    return _take("embedding", w, ids, _rows_mapping(w.shape, ids), arrays, attrs)


def embedding_backward(arrays, attrs, types):
    g, ids = arrays
    if np.dtype(g.dtype).name not in ATOMIC:
        return _host_if_no_atomics("embedding_backward", arrays, attrs, types)
    shape = (attrs["num_weights"], tuple(g.shape)[-1])  # (the simulator's shapes take no negative index)
    out = _zeros(shape, g.dtype)
    return _scatter("embedding_backward", out, g, cuda_backend._strides(g.shape), ids, _rows_mapping(shape, ids),
                    True, arrays, attrs)


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
            kernel("arg_block" if tree else "arg_thread")[grid](storage.flat(x), storage.flat(out), nout, r, inner,
                                                                 is_max)
        return [out]

    return run


argmax, argmin = _arg(True), _arg(False)
HANDLERS = {"index": index, "index_backward": index_backward, "index_put": index_put, "gather": gather,
            "gather_backward": gather_backward, "embedding": embedding, "embedding_backward": embedding_backward,
            "argmax": argmax, "argmin": argmin}
