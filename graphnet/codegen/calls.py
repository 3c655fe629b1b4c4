"""Calls from a generated driver into compiled kernels through their native entry points, without linking them.

A plain call from one njit function to another links the callee's LLVM module into the caller's and optimizes and
generates machine code for all of it again: a LeNet training driver re-compiled every conv, pool and GEMM kernel
(+5 s of cold compile). `call_compiled(site, fn, address, *args)` instead compiles (or loads) `fn` for the argument
types on its own and calls the address the driver is handed at run time, with Numba's calling convention and error
propagation. The address is a run-time value, so the driver stays cacheable; which overload each call site needs is
recorded while the driver is typed and kept next to its source (`link` below), so a process that loads the driver
from Numba's cache finds the same overloads.
"""
import os
import pickle

import numpy as np
from numba import typeof, types
from numba.core import cgutils, errors
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

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
    sites in `path`.sites; a process that loads it from Numba's cache reads that record instead. None when the
    driver came from Numba's cache without a record (its source must then change to be typed again)."""
    record = path + ".sites"
    program.compile(tuple(typeof(a) for a in args) + (types.int64[::1],))
    typed = _SITES.pop(token, {})
    if len(typed) != n_sites:  # loaded from Numba's cache: its sites are on record, or unknown
        if not os.path.exists(record):
            return None
        typed = _read(record)
    elif not os.path.exists(record) or _read(record) != typed:
        tmp = f"{record}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(typed, f)
        os.replace(tmp, record)
    namespace = program.py_func.__globals__
    return np.array([_address(_resolve(namespace, typed[k][0]), typed[k][1]) for k in range(n_sites)], np.int64)


def _read(record):
    with open(record, "rb") as f:
        return pickle.load(f)


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
