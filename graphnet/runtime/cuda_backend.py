"""Eager CUDA: run one registry op on device arrays, registered as `runtime.backends.BACKENDS['cuda']`.

Elementwise ops run a single-op kernel rendered from the op's `expr` template (compiled once per op, dtypes, rank
and attrs; sizes/strides are arguments); movement ops are strided copies through the same kernel ('copy');
reductions use codegen/cuda.py, and matmul, conv, pooling, cross-entropy rows, indexing and the random ops the
hand-written kernels of codegen/templates/cuda_*.py through their launchers in runtime/cuda_kernels/. Any other op
falls back to its NumPy impl on the host (copy in, run, copy out), counted in FALLBACKS and warned once per op.
"""
import warnings

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..core import dtype as dt
from ..core.device import device
from ..core.opdef import OPS
from ..core.types import TensorType
from ..ir.ops.indexing import basic_index
from ..ir.ops.movement import _pad_widths
from ..ir.ops.reduce import _sum_to_axes
from ..ir.ops.util import norm_dim, norm_dims
from . import storage
from .backends import BACKENDS, Backend

FALLBACKS = {}
_KERNELS = {}


def _name(arr):
    return np.dtype(arr.dtype).name


def _strides(shape):
    out, acc = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        out[d], acc = acc, acc * shape[d]
    return out


def _kernel(key, render):
    kern = _KERNELS.get(key)
    if kern is None:
        from ..codegen.cuda import load

        kern = _KERNELS[key] = load(render())
    return kern


# ---- strided elementwise launches ------------------------------------------------------------------------------
def _collapse(shape, stride_sets):
    """Drop size-1 dims, then merge dims every operand walks contiguously (fewer index divisions per element)."""
    from ..codegen.cpu import _collapse as merge

    keep = [d for d, n in enumerate(shape) if n != 1]
    return merge([shape[d] for d in keep], [[s[d] for d in keep] for s in stride_sets])


def launch(op, attrs, out, out_geom, operands, shape):
    """out[geometry] = op(*operands) over `shape`; operands and out are (array, offset, strides) in elements."""
    n = int(np.prod(shape, dtype=np.int64))
    if n == 0:
        return out
    dims, sets = _collapse(tuple(shape), [out_geom[1]] + [g[2] for g in operands])
    in_dtypes = tuple(_name(g[0]) for g in operands)
    key = ("ew", op, in_dtypes, _name(out), len(dims), tuple(sorted(attrs.items())))

    def render():
        from ..codegen.cuda import render_elementwise

        return render_elementwise(op, in_dtypes, _name(out), len(dims), attrs)

    from ..codegen.cuda import grid_for

    offsets = [out_geom[0]] + [g[1] for g in operands]
    _kernel(key, render)[grid_for(n)](storage.flat(out), *(storage.flat(g[0]) for g in operands), n, *dims,
                                      *(s for row in sets for s in row), *offsets)
    return out


def _broadcast(arr, shape):
    """(array, 0, strides) reading a contiguous array broadcast to `shape` (NumPy alignment)."""
    own, lead = _strides(arr.shape), len(shape) - arr.ndim
    return arr, 0, [0] * lead + [0 if s == 1 else st for s, st in zip(arr.shape, own)]


def _geometry(shape, view):
    """(offset, strides) in elements of `view(ndarray of shape)`: indexing done on a fake 1-byte-item array."""
    fake = as_strided(np.zeros(1, np.int8), tuple(shape), tuple(_strides(shape)))
    v = view(fake)
    return v.__array_interface__["data"][0] - fake.__array_interface__["data"][0], list(v.strides), v.shape


def _copy_view(arr, view):
    off, strides, shape = _geometry(arr.shape, view)
    out = storage.empty(shape, arr.dtype)
    return launch("copy", {}, out, (0, _strides(shape)), [(arr, off, strides)], shape)


def _const(value, dtype):
    key = ("const", value, np.dtype(dtype).name)
    if key not in _KERNELS:
        _KERNELS[key] = storage.to_device(np.full(1, value, dtype))
    return _KERNELS[key]


def _fill(out, value):
    return launch("copy", {}, out, (0, _strides(out.shape)), [(_const(value, out.dtype), 0, [0] * out.ndim)],
                  out.shape)


def _write_into(out, region, src):
    """out[region] = src (contiguous src), region given as a NumPy view function of out."""
    off, strides, shape = _geometry(out.shape, region)
    return launch("copy", {}, out, (off, strides), [_broadcast(src, shape)], shape)


# ---- op handlers: (arrays, attrs, out_types) -> list of device arrays --------------------------------------------
def _elementwise(name):
    def run(arrays, attrs, types):
        shape = types[0].shape
        out = storage.empty(shape, types[0].dtype.np)
        return [launch(name, attrs, out, (0, _strides(shape)), [_broadcast(a, shape) for a in arrays], shape)]

    return run


def _reshape(arrays, attrs, types):
    return [storage.alias(arrays[0].reshape(types[0].shape), arrays[0])]


def _view_op(view):
    return lambda arrays, attrs, types: [_copy_view(arrays[0], lambda v: view(v, arrays[0], **attrs))]


def _cat(arrays, attrs, types):
    out = storage.empty(types[0].shape, types[0].dtype.np)
    d, start = norm_dim("cat", attrs["dim"], out.ndim), 0
    for a in arrays:
        stop = start + a.shape[d]
        _write_into(out, lambda v, lo=start, hi=stop: v[(slice(None),) * d + (slice(lo, hi),)], a)
        start = stop
    return [out]


def _pad(arrays, attrs, types):
    x = arrays[0]
    out = _fill(storage.empty(types[0].shape, x.dtype), attrs.get("value", 0))
    widths = _pad_widths("pad", x, attrs["pad"])
    return [_write_into(out, lambda v: v[tuple(slice(a, a + s) for s, (a, _) in zip(x.shape, widths))], x)]


def _getitem_backward(arrays, attrs, types):
    out = _fill(storage.empty(types[0].shape, arrays[0].dtype), 0)
    return [_write_into(out, lambda v: v[basic_index(v.shape, attrs["index"])[0]], arrays[0])]


def _reduce(reduce_op, mean=False):
    def run(arrays, attrs, types):
        x = arrays[0]
        axes = norm_dims("reduce", attrs.get("dims"), x.ndim) if "dims" in attrs else \
            _sum_to_axes(x.shape, attrs["shape"])[1]
        return [reduce_array(x, axes, reduce_op, types[0], mean)]

    return run


def reduce_array(x, axes, reduce_op, out_type, mean=False):
    """Reduce contiguous `x` over `axes` with one block per output element (codegen/cuda.render_reduction)."""
    from ..codegen.cuda import grid_for, launch_limits, render_reduction, use_tree

    out = storage.empty(out_type.shape, out_type.dtype.np)
    st = _strides(x.shape)
    keep = [d for d in range(x.ndim) if d not in axes]
    dk, (sk,) = _collapse([x.shape[d] for d in keep], [[st[d] for d in keep]])
    dr, (sr,) = _collapse([x.shape[d] for d in axes], [[st[d] for d in axes]])
    dr, sr = (dr, sr) if dr else ([1], [0])
    nout, nred = out.size, int(np.prod(dr))
    if nout == 0:
        return out
    threads, max_blocks = launch_limits()
    tree = use_tree(nout, nred)
    key = ("red", reduce_op, _name(x), _name(out), len(dk), len(dr), mean, threads, tree)
    kern = _kernel(key, lambda: render_reduction(reduce_op, _name(x), _name(out), len(dk), len(dr), threads, mean,
                                                 tree))
    grid = (min(nout, max_blocks), threads) if tree else grid_for(nout)
    kern[grid](storage.flat(x), storage.flat(out), nout, nred, 0, *dk, *sk, *dr, *sr, float(nred))
    return out


def _matmul(arrays, attrs, types):
    from .cuda_kernels.gemm import gemm_strided

    shape = types[0].shape
    batch, (m, n), k = shape[:-2], shape[-2:], arrays[0].shape[arrays[0].ndim - 1]
    nb = int(np.prod(batch, dtype=np.int64))
    ops = []
    for a in arrays:
        if a.ndim > 2 and tuple(a.shape[:-2]) != tuple(batch):
            a = _copy_view(a, lambda v, a=a: np.broadcast_to(v, tuple(batch) + tuple(a.shape)[-2:]))
        ops.append((a, 0 if a.ndim == 2 else a.shape[a.ndim - 2] * a.shape[a.ndim - 1]))
    out = storage.empty(shape, types[0].dtype.np)
    (a, sa), (b, sb) = ops
    if out.size:
        gemm_strided(storage.flat(a), storage.flat(b), storage.flat(out), m, n, k, (1, nb), (0, sa, k, 1),
                     (0, sb, n, 1))
    return [out]


def _template(module, fn):
    def run(arrays, attrs, types):
        import importlib

        mod = importlib.import_module(f"graphnet.runtime.cuda_kernels.{module}")
        out = getattr(mod, fn)(*arrays, **_template_attrs(fn, attrs, types))
        return list(out) if isinstance(out, tuple) else [out]

    return run


def _template_attrs(fn, attrs, types):
    if fn in ("max_pool2d", "avg_pool2d"):
        attrs = {k: v for k, v in attrs.items() if k != "ceil_mode"}
        return {"out_shape": types[0].shape, **attrs}
    if fn == "avg_pool2d_backward":
        return {k: v for k, v in attrs.items() if k != "ceil_mode"}
    return attrs


def _to_device(arrays, attrs, types):
    dev = attrs["device"]
    host = storage.to_host(arrays[0])
    return [host if dev.type == "cpu" else storage.to_device(host, dev.index)]


def _log_softmax(arrays, attrs, types):
    """The op's own stable formula from device ops (max, shift, exp, sum, log): it stays on the GPU."""
    dim = (attrs["dim"],)
    x, dtype = arrays[0], types[0].dtype.np
    m = apply("amax", x, dims=dim, keepdim=True)
    inf, zero = storage.to_device(np.array(np.inf, dtype)), storage.to_device(np.array(0, dtype))
    shifted = apply("sub", x, apply("where", apply("eq", apply("abs", m), inf), zero, m))
    return [apply("sub", shifted, apply("log", apply("sum", apply("exp", shifted), dims=dim, keepdim=True)))]


def apply(name, *arrays, **attrs):
    """Op `name` on device arrays of matching dtypes (no promotion, no autograd): for composite device code."""
    opdef = OPS[name]
    out = opdef.infer(*(TensorType(tuple(a.shape), dt.as_dtype(np.dtype(a.dtype)), device("cuda", 0))
                        for a in arrays), **attrs)
    results = run_cuda(opdef, list(arrays), attrs, [out] if isinstance(out, TensorType) else list(out))
    return results[0] if opdef.n_outputs == 1 else tuple(results)


_VIEWS = {
    "permute": lambda v, x, dims: np.transpose(v, dims),
    "expand": lambda v, x, shape: np.broadcast_to(v, tuple(shape)),
    "getitem": lambda v, x, index: v[basic_index(v.shape, index)[0]],
    "flip": lambda v, x, dims: np.flip(v, norm_dims("flip", dims, v.ndim)),
}
HANDLERS = {
    "reshape": _reshape, "cat": _cat, "pad": _pad, "getitem_backward": _getitem_backward,
    "sum": _reduce("sum"), "sum_to": _reduce("sum"), "mean": _reduce("sum", mean=True), "prod": _reduce("prod"),
    "amax": _reduce("max"), "amin": _reduce("min"), "matmul": _matmul, "to_device": _to_device,
    "log_softmax": _log_softmax,
    "cross_entropy_rows": _template("softmax", "cross_entropy_rows"),
    "cross_entropy_rows_backward": _template("softmax", "cross_entropy_rows_backward"),
    "check_targets": _template("softmax", "check_targets"),
    "conv2d": _template("conv", "conv2d"), "conv2d_input_grad": _template("conv", "conv2d_input_grad"),
    "conv2d_weight_grad": _template("conv", "conv2d_weight_grad"),
    "max_pool2d": _template("pool", "max_pool2d"),
    "max_pool2d_backward": _template("pool", "max_pool2d_backward"),
    "avg_pool2d": _template("pool", "avg_pool2d"),
    "avg_pool2d_backward": _template("pool", "avg_pool2d_backward"),
    **{name: _view_op(view) for name, view in _VIEWS.items()},
}


def _module_handler(module, name):
    """A handler with the backend's own signature, from runtime/cuda_kernels/<module>.py (imported on first use)."""
    def run(arrays, attrs, types):
        import importlib

        return importlib.import_module(f"graphnet.runtime.cuda_kernels.{module}").HANDLERS[name](arrays, attrs, types)

    return run


HANDLERS.update({name: _module_handler("index", name) for name in ("index", "index_backward", "index_put", "gather",
                                                                   "gather_backward", "embedding", "embedding_backward",
                                                                   "argmax", "argmin")})
HANDLERS.update({name: _module_handler("recurrent", name) for name in ("rnn_scan", "rnn_scan_backward")})
HANDLERS.update({name: _module_handler("random", name) for name in ("rand_uniform", "rand_normal", "rng_advance")})
HANDLERS.update({name: _module_handler("scan", name) for name in ("cumsum", "cumprod")})


def _handler(opdef):
    handler = HANDLERS.get(opdef.name)
    if handler is None and opdef.kind == "elementwise" and (opdef.expr or opdef.name == "cast"):
        handler = HANDLERS[opdef.name] = _elementwise(opdef.name)
    return handler


def _fallback(opdef, arrays, attrs, types):
    """Run the NumPy impl on host copies; counted and warned once per op so the gaps stay visible."""
    FALLBACKS[opdef.name] = FALLBACKS.get(opdef.name, 0) + 1
    if FALLBACKS[opdef.name] == 1:
        warnings.warn(f"graphnet CUDA: op '{opdef.name}' has no device kernel yet; it runs on the host (inputs copied "
                      "to the CPU and results back)", RuntimeWarning, stacklevel=4)
    result = opdef.impl(*(storage.to_host(a) for a in arrays), **attrs)
    results = (result,) if opdef.n_outputs == 1 else result
    return [storage.to_device(np.asarray(r, dtype=t.dtype.np), t.device.index) for r, t in zip(results, types)]


def run_cuda(opdef, arrays, attrs, out_types):
    """The op's device kernel (or the host fallback) on device arrays; returns the output device arrays."""
    handler = _handler(opdef)
    results = handler(arrays, attrs, out_types) if handler else _fallback(opdef, arrays, attrs, out_types)
    for arr, typ in zip(results, out_types):
        if tuple(arr.shape) != tuple(typ.shape):
            raise RuntimeError(f"{opdef.name}: internal error, CUDA kernel gave shape {tuple(arr.shape)} but infer "
                               f"said {typ.shape}")
    return results


BACKENDS["cuda"] = Backend(run_cuda, lambda opdef, out, inp: opdef.is_view and storage.may_share_memory(out, inp))
