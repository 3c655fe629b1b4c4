"""Calls from a generated driver into compiled kernels through their native entry points, without linking them.

A plain call from one njit function to another links the callee's LLVM module into the caller's and optimizes and
generates machine code for all of it again: a LeNet training driver re-compiled every conv, pool and GEMM kernel
(+5 s of cold compile). `call_compiled(site, fn, address, *args)` instead compiles (or loads) `fn` for the argument
types on its own and calls the address the driver is handed at run time, with Numba's calling convention and error
propagation. The address is a run-time value, so the driver stays cacheable; which overload each call site needs is
recorded while the driver is typed and kept next to its source as JSON (`link` below), so a process that loads the
driver from Numba's cache finds the same overloads.
"""
import json

import numpy as np
from llvmlite import ir
from numba import typeof, types
from numba.core import cgutils, errors
from numba.core.dispatcher import Dispatcher
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from . import disk_cache

_SITES = {}  # driver token -> {call index: (callee name in the driver's module, argument types)}, filled in typing
TOKEN = "@driver@"  # stands for the driver's token in a site literal until compile_driver fills it in


@intrinsic
def call_compiled(typingctx, site, fn, address, *args):
    """fn(*args) through `address`, the native entry point of fn's overload for these argument types."""
    if not isinstance(site, types.StringLiteral):
        return None  # Numba retries with literal arguments
    argtys = tuple(types.unliteral(t) for t in (args[0] if isinstance(args[0], types.StarArgTuple) else args))
    token, index, name = site.literal_value.split(":", 2)
    target = typingctx.resolve_function_type(fn, argtys, {})  # the overload a plain call would pick (or compile)
    if target is None:
        raise errors.TypingError(f"graphnet driver: no overload of {name} for {argtys}")
    _SITES.setdefault(token, {})[int(index)] = (name, target.args)

    def codegen(context, builder, sig, llargs):
        fnty = context.call_conv.get_function_type(target.return_type, target.args)
        callee = builder.inttoptr(llargs[2], fnty.as_pointer())
        values = [context.cast(builder, v, have, want) for v, have, want in
                  zip(cgutils.unpack_tuple(builder, llargs[3], len(argtys)), argtys, target.args)]
        status, _ = context.call_conv.call_function(builder, callee, target.return_type, target.args, values)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return types.none(site, fn, address, types.StarArgTuple(argtys)), codegen


@intrinsic
def call_c(typingctx, address, *args):
    """The C function at `address` (an int64 run-time value) called with `args`: arrays as their data pointers,
    integers at their own width; its int result. A driver calls the MPI library's collectives through it."""
    argtys = tuple(types.unliteral(t) for t in (args[0] if isinstance(args[0], types.StarArgTuple) else args))
    if not all(isinstance(t, (types.Array, types.Integer)) for t in argtys):
        raise errors.TypingError(f"graphnet driver: call_c takes arrays and integers, got {argtys}")

    def codegen(context, builder, sig, llargs):
        values = []
        for ty, v in zip(argtys, cgutils.unpack_tuple(builder, llargs[1], len(argtys))):
            values.append(builder.bitcast(make_array(ty)(context, builder, v).data, cgutils.voidptr_t)
                          if isinstance(ty, types.Array) else v)
        fnty = ir.FunctionType(ir.IntType(32), [v.type for v in values])
        return builder.call(builder.inttoptr(llargs[0], fnty.as_pointer()), values)

    return types.int32(types.int64, types.StarArgTuple(argtys)), codegen


@intrinsic
def flat(typingctx, a):
    """A C-contiguous array as a 1-d view of its elements: the struct rebuilt with one dim, no checks (a driver
    passes every generated kernel flat views; `reshape(-1)` would lower its error paths at each of them)."""
    if not (isinstance(a, types.Array) and a.layout == "C"):
        return None
    out = a.copy(ndim=1)

    def codegen(context, builder, sig, llargs):
        src = make_array(a)(context, builder, llargs[0])
        dst = make_array(out)(context, builder)
        populate_array(dst, data=src.data, shape=[src.nitems], strides=[src.itemsize], itemsize=src.itemsize,
                       meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, out, dst._getvalue())

    return out(a), codegen


def site(index, callee):
    """The literal a driver passes as `site`: its token (unique per driver source, so Numba's per-process typing
    cache never answers for another driver's call), the call's index and the callee's name in the driver's module."""
    return repr(f"{TOKEN}:{index}:{callee}")


def link(program, path, token, n_sites, args):
    """The int64 array of entry-point addresses `program` (a driver dispatcher with this `token` whose source is at
    `path`, with `n_sites` calls) takes as its last argument after `args`. Compiling it types it, recording its
    sites in `path`.sites.json (a name the pickled records of earlier versions never had, so a cache shared with
    them breaks neither); a process that loads it from Numba's cache reads that record instead, and one that finds
    no intact record drops the driver from Numba's cache first, so it is typed again. None when the driver was
    compiled earlier in this process and its record has gone since."""
    record = path + ".sites.json"
    sig = tuple(typeof(a) for a in args) + (types.int64[::1],)
    namespace = program.py_func.__globals__
    recorded = _read(record, sig, n_sites, namespace)
    if recorded is None and sig not in program.overloads:
        disk_cache.forget_numba(program)
    program.compile(sig)
    typed = _SITES.pop(token, {})
    if len(typed) == n_sites:
        if typed != recorded:
            _write(record, sig, typed)
    elif recorded is None:
        return None
    else:
        typed = recorded
    return np.array([_address(_resolve(namespace, typed[k][0]), typed[k][1]) for k in range(n_sites)], np.int64)


def _write(record, sig, sites):
    """Keep the `sites` ({index: (callee name, argument types)}) of the driver typed for `sig` as JSON: loading a
    record runs no code."""
    disk_cache.write_signed(record, json.dumps({
        "driver": [_encode(t) for t in sig],
        "sites": [[k, name, [_encode(t) for t in argtys]] for k, (name, argtys) in sorted(sites.items())]}))


def _read(record, sig, n_sites, namespace):
    """The call sites on record for the driver typed for `sig`, {index: (callee name, argument types)}, if the
    record is intact and names the driver's `n_sites` sites and kernels; None if it is missing, for other argument
    types, or damaged (then removed, with one warning)."""
    text = disk_cache.read_signed(record)
    if text is None:
        return None
    try:
        content = json.loads(text)
        if tuple(_decode(t) for t in content["driver"]) != sig:
            return None
        sites = {k: (name, tuple(_decode(t) for t in argtys)) for k, name, argtys in content["sites"]}
        if sorted(sites) != list(range(n_sites)) or not all(isinstance(_resolve(namespace, name), Dispatcher)
                                                             for name, _ in sites.values()):
            raise ValueError(f"not the {n_sites} call sites of this driver")
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        return disk_cache.damaged(record, e)
    return sites


_SCALARS = {str(t): t for t in (*types.number_domain, types.boolean, types.none)}


def _encode(t):
    """A call site's argument type as JSON: scalars by name, arrays and tuples by their parts."""
    if type(t) is types.Array:
        return ["array", _encode(t.dtype), t.ndim, t.layout, not t.mutable, t.aligned]
    if type(t) is types.UniTuple:
        return ["unituple", _encode(t.dtype), t.count]
    if type(t) is types.Tuple:
        return ["tuple", [_encode(e) for e in t.types]]
    if _SCALARS.get(str(t)) == t:
        return str(t)
    raise TypeError(f"graphnet driver: a record of call sites cannot hold the argument type {t!r}")


def _decode(j):
    """The Numba type `_encode` wrote as `j` (KeyError, TypeError or ValueError for anything else)."""
    if isinstance(j, str):
        return _SCALARS[j]
    kind, *parts = j
    if kind == "array":
        dtype, ndim, layout, readonly, aligned = parts
        return types.Array(_decode(dtype), ndim, layout, readonly=readonly, aligned=aligned)
    if kind == "unituple":
        return types.UniTuple(_decode(parts[0]), parts[1])
    if kind == "tuple":
        return types.Tuple([_decode(e) for e in parts[0]])
    raise ValueError(f"unknown type kind {kind!r}")


def _resolve(namespace, dotted):
    head, *rest = dotted.split(".")
    obj = namespace[head]
    for part in rest:
        obj = getattr(obj, part)
    return obj


def _address(disp, argtys):
    """The native entry point of disp's overload for `argtys` (compiled or loaded from Numba's cache if needed)."""
    if argtys not in disp.overloads:
        disp.compile(argtys)
    cres = disp.overloads[argtys]
    return cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
