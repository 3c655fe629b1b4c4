"""Render a LoopKernel to Python source for numba.njit, and load it through the on-disk kernel cache.

Rendering is a pure string function (golden-testable without Numba). Loading writes the source to a file named by
its content hash (codegen/disk_cache.py), runs it as that file's module, and lets Numba's cache=True keep the machine
code, so a second process compiles nothing.
"""
import importlib.util
import math
import os
import re
import sys

from ..ir.kernel import contiguous_strides
from ..ir.ops import OPS
from . import disk_cache
from .disk_cache import digest
from .fastmath import FAST_EXPR, SOURCE_DIGEST

# CPU overrides of the ops' scalar templates (tinygrad's code_for_op idea): keep float32 math in float32.
CPU_EXPR = {
    "relu": "(zero_{t} if {0} < 0 else {0})",  # NaN stays NaN, as in PyTorch
    "maximum": "({0} if {0} >= {1} or {0} != {0} else {1})",
    "minimum": "({0} if {0} <= {1} or {0} != {0} else {1})",
    "sign": "((zero_{t} + 1) if {0} > 0 else (-(zero_{t} + 1) if {0} < 0 else zero_{t}))",
    "sigmoid": "(one_{t} / (one_{t} + math.exp(-{0})))",
    "rsqrt": "(one_{t} / math.sqrt({0}))",
    "floor": "np.floor({0})",  # math.floor converts to an integer: inf and NaN became -2**63
    "trunc": "np.trunc({0})",
}
# bool overrides: a bool is its own sign (the numeric template's zero_bool constant does not exist)
BOOL_EXPR = {"sign": "{0}"}
NP_TYPES = {"float32": "np.float32", "float64": "np.float64", "float16": "np.float16", "int64": "np.int64",
            "int32": "np.int32", "int16": "np.int16", "int8": "np.int8", "uint8": "np.uint8", "bool": "np.bool_"}
NUMBA_TYPES = {"float32": "float32", "float64": "float64", "float16": "float16", "int64": "int64", "int32": "int32",
               "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "boolean"}
REDUCE_INIT = {"sum": "zero_{t}", "max": "-np.inf", "min": "np.inf"}
REDUCE_STEP = {"sum": "acc += {v}", "max": "acc = {v} if {v} > acc or {v} != {v} else acc",
               "min": "acc = {v} if {v} < acc or {v} != {v} else acc"}
PARALLEL_MIN = 1 << 20
# Reductions may reassociate their accumulation so LLVM vectorises it (float32 round-off differs, as in PyTorch).
REASSOC = ", fastmath={'reassoc'}"


def scalar_expr(op, args, attrs, dtype):
    """The scalar expression for one statement; float32 transcendentals use graphnet's vectorisable versions."""
    if op == "cast":
        return f"{NP_TYPES[attrs['dtype'].name]}({args[0]})"
    if op == "clamp":
        return clamp_expr(args[0], attrs, dtype)
    if op == "clamp_tensor":
        return clamp_tensor_expr(args, attrs, CPU_EXPR)
    template = FAST_EXPR.get(op) if dtype == "float32" and op in FAST_EXPR else None
    template = template or (BOOL_EXPR.get(op) if dtype == "bool" else None) or CPU_EXPR.get(op) or OPS[op].expr
    if template is None:
        raise NotImplementedError(f"codegen: op {op!r} has no scalar template")
    fields = {k: (literal(v) if v is not None else "None") for k, v in attrs.items()}
    return template.format(*args, t=dtype, **fields)


def clamp_tensor_expr(args, attrs, templates):
    """clamp by tensor bounds as the NaN-propagating maximum then minimum `templates` over the bounds present."""
    out = args[0]
    for key, name, bound in (("has_min", "maximum", args[1]), ("has_max", "minimum", args[2])):
        if attrs[key]:
            out = templates[name].format(out, bound)
    return out


def clamp_expr(x, attrs, dtype):
    """`x` limited to the bounds that are not None, with PyTorch's NaN rule: a NaN input or bound gives NaN (Python's
    min/max would keep whichever argument comes first, and a None bound does not type)."""
    out = x
    for keep, key in ((">=", "min"), ("<=", "max")):
        if attrs.get(key) is not None:
            bound = f"{NP_TYPES[dtype]}({literal(attrs[key])})"
            out = f"({out} if {out} {keep} {bound} or {out} != {out} else {bound})"
    return out


def literal(value):
    """Python source for a scalar constant, spelling inf/nan as NumPy names."""
    if isinstance(value, float) and not math.isfinite(value):
        return "np.nan" if math.isnan(value) else ("np.inf" if value > 0 else "-np.inf")
    return repr(value)


def _collapse(domain, stride_sets):
    """Merge adjacent domain dims that every access walks contiguously; returns (dims, per-access strides)."""
    dims, sets = [], [[] for _ in stride_sets]
    for d, n in enumerate(domain):
        if dims and all(st[d] * n == s[-1] for st, s in zip(stride_sets, sets)):
            dims[-1] *= n
            for st, s in zip(stride_sets, sets):
                s[-1] = st[d]
            continue
        dims.append(n)
        for st, s in zip(stride_sets, sets):
            s.append(st[d])
    return dims, sets


class Extents(list):
    """The loop extents, strides, offsets and constants a kernel's source uses. Static: written as literals.
    Generic: each is a parameter `n<k>` (its value kept here and its Numba type in `types`, in parameter order),
    so one source, compiled once, serves every size with the same loop structure (a mean's 1/n is a constant that
    changes with the size); strides 0 and 1 stay literal (they decide the structure: broadcast, contiguous)."""

    def __init__(self, generic=False, constants=None):
        super().__init__()
        self.generic, self.types = generic, []
        self.constants = generic if constants is None else constants  # constants too are parameters

    def __call__(self, n):
        return self._parameter(int(n), "int64") if self.generic else str(n)

    def const(self, value, dtype):
        if not self.constants:
            return f"{NP_TYPES[dtype]}({literal(value)})"
        return self._parameter(value, NUMBA_TYPES[dtype])

    def _parameter(self, value, numba_type):
        self.append(value)
        self.types.append(numba_type)
        return f"n{len(self) - 1}"


def _index(strides, ivars, ext, offset=0):
    terms = [f"{i} * {ext(s)}" if s != 1 else i for i, s in zip(ivars, strides) if s != 0]
    if offset:
        terms.append(ext(offset))
    return " + ".join(terms) or "0"


def _signature(buffers, dtypes, scalar_types):
    args = [f"{NUMBA_TYPES[dtypes[b]]}[::1]" for b in buffers]
    return f"void({', '.join(args + scalar_types)})"


def render(kernel, parallel=None):
    """Python source of a module defining `kernel(*inputs, *outputs)` over flat 1-D contiguous arrays, with its
    sizes written in (see render_generic)."""
    return render_generic(kernel, parallel, generic=False)[0]


def sizes_free(kernel):
    """Whether `kernel` runs as fast with its sizes as parameters: every loop nest elementwise over one contiguous
    (or broadcast) loop, such as an optimizer's update of one parameter or an activation. Such a loop is memory-bound
    and vectorises the same with a run-time bound; its constants stay literal (a literal exponent folds)."""
    for m in kernel.members:
        if m.is_reduction:
            return False
        dims, sets = _collapse(m.domain, [a.strides for a in m.reads] + [contiguous_strides(m.domain)])
        if len(dims) > 1 or any(st not in (0, 1) for strides in sets for st in strides):
            return False
    return True


def render_sized(kernel, parallel=None, inplace=None):
    """render_generic for a Program of fixed sizes: sizes are literals, except in a kernel that is `sizes_free`,
    which takes them as parameters, so the per-parameter updates of an optimizer share one compiled kernel for all
    parameter sizes (ResNet-20's training step: 87 -> 64 distinct kernels)."""
    free = sizes_free(kernel)
    return render_generic(kernel, parallel, generic=free, inplace=inplace, constants=False)


def render_generic(kernel, parallel=None, generic=True, inplace=None, constants=None):
    """(source, extents): a module defining `kernel(*inputs, *outputs, *extents)`: one loop nest per member (a
    HorizontalKernel has several, run in turn), each a prange over PARALLEL_MIN elements or more. Generic, the
    sizes and constants are the trailing parameters, whose values for this kernel are `extents`. `inplace` maps
    an output to the input it overwrites: that output is no parameter, its stores go to the input. Passed as two
    arguments, the same array would make LLVM's overlap check pick the scalar loop (5x slower with an exp).
    `constants=False` keeps the constants literal in a generic kernel."""
    inplace = inplace or {}
    flags = [math.prod(m.domain) >= PARALLEL_MIN if parallel is None else parallel for m in kernel.members]
    ext = Extents(generic, constants)
    body = [line for m, par in zip(kernel.members, flags)
            for line in (_render_reduction if m.is_reduction else _render_elementwise)(m, par, ext)]
    if inplace:  # one pass of one pattern over the body (a regex per output and line cost ~1 s for a 12-layer GPT)
        stores = re.compile(r"\b(" + "|".join(map(re.escape, inplace)) + r")\[")
        body = [stores.sub(lambda m: f"{inplace[m.group(1)]}[", line) for line in body]
    params = [*kernel.inputs, *(b for b in kernel.outputs if b not in inplace)]
    parallel = any(flags)
    dtypes = sorted({*kernel.dtypes.values()} - {"bool"}) or ["float32"]
    consts = [f"zero_{t} = {NP_TYPES[t]}(0)\none_{t} = {NP_TYPES[t]}(1)" for t in dtypes]
    head = [f"# graphnet kernel; fastmath {SOURCE_DIGEST} (Numba's cache only tracks this file)",
            "import math", "import numpy as np", "from numba import njit, prange",
            "from graphnet.codegen.fastmath import fast_erf, fast_exp, fast_log, fast_sigmoid, fast_tanh  # noqa: F401",
            "", *consts, "", "",
            f"@njit({_signature(params, kernel.dtypes, ext.types)!r}, cache=True, parallel={parallel}, "
            f"error_model='numpy'{REASSOC if kernel.is_reduction else ''})",
            f"def kernel({', '.join((*params, *(f'n{k}' for k in range(len(ext)))))}):"]
    return "\n".join(head + body) + "\n", list(ext)


def _loads(kernel, strides, ivars, ext):
    """(hoisted, inner): the body's statements, loads turned into indexed reads of the input buffers. A load whose
    strides are all 0 (a 0-d input such as a runtime learning rate, a broadcast scalar) is hoisted before the loops:
    read inside, LLVM must re-read it after every store (the buffers may alias) and the loop does not vectorise."""
    hoisted, inner = [], []
    for st in kernel.body:
        dtype = kernel.dtypes.get(st.var, kernel.dtypes[kernel.outputs[0]])
        if st.op == "load":
            acc = kernel.reads[st.args[0]]
            line = f"{st.var} = {acc.buffer}[{_index(strides[st.args[0]], ivars, ext, acc.offset)}]"
            (inner if any(strides[st.args[0]]) else hoisted).append(line)
        elif st.op == "const":
            inner.append(f"{st.var} = {ext.const(st.args[0], dtype)}")
        else:
            inner.append(f"{st.var} = {scalar_expr(st.op, st.args, st.attr_dict(), dtype)}")
    return hoisted, inner


def _nest(dims, ivars, parallel, ext, depth=1):
    """Loop headers for `dims`; the outermost is a prange when parallel."""
    lines = []
    for k, (n, i) in enumerate(zip(dims, ivars)):
        rng = "prange" if parallel and k == 0 else "range"
        lines.append("    " * (depth + k) + f"for {i} in {rng}({ext(n)}):")
    return lines


def _render_elementwise(kernel, parallel, ext):
    out_strides = contiguous_strides(kernel.domain)
    dims, sets = _collapse(kernel.domain, [a.strides for a in kernel.reads] + [out_strides])
    ivars = [f"i{k}" for k in range(len(dims))]
    nest = _nest(dims, ivars, parallel, ext)
    hoisted, inner = _loads(kernel, sets[:-1], ivars, ext)
    pad = "    " * (len(dims) + 1)
    lines = ["    " + line for line in hoisted] + nest + [pad + line for line in inner]
    out_index = _index(sets[-1], ivars, ext)
    for buf, var in zip(kernel.outputs, kernel.results):
        lines.append(pad + f"{buf}[{out_index}] = {var}")
    return lines


def _render_reduction(kernel, parallel, ext):
    keep = [d for d in range(len(kernel.domain)) if d not in kernel.reduce_axes]
    red = list(kernel.reduce_axes)
    if kernel.reduce_op == "sum" and keep and red and max(red) < min(keep) and not parallel:
        return _render_column_sum(kernel, keep, red, ext)
    out_st = contiguous_strides(tuple(kernel.domain[d] for d in keep))
    dims_k, sets_k = _collapse([kernel.domain[d] for d in keep], [[a.strides[d] for d in keep] for a in
                                                                  kernel.reads] + [list(out_st)])
    dims_r, sets_r = _collapse([kernel.domain[d] for d in red], [[a.strides[d] for d in red] for a in kernel.reads])
    ik = [f"i{k}" for k in range(len(dims_k))]
    ir = [f"r{k}" for k in range(len(dims_r))]
    lines = _nest(dims_k, ik, parallel, ext)
    pad = "    " * (len(dims_k) + 1)
    dtype = kernel.dtypes[kernel.outputs[0]]
    lines.append(pad + f"acc = {REDUCE_INIT[kernel.reduce_op].format(t=dtype)}")
    lines += _nest(dims_r, ir, False, ext, depth=len(dims_k) + 1)
    inner = "    " * (len(dims_k) + len(dims_r) + 1)
    combined = [sk + sr for sk, sr in zip(sets_k[:-1], sets_r)] if dims_r else sets_k[:-1]
    hoisted, body = _loads(kernel, combined, ik + ir, ext)
    lines = ["    " + line for line in hoisted] + lines + [inner + line for line in body]
    lines.append(inner + REDUCE_STEP[kernel.reduce_op].format(v=kernel.results[0]))
    lines += [pad + line for line in post_lines(kernel, dtype, ext)]
    final = kernel.post[-1].var if kernel.post else "acc"
    lines.append(pad + f"{kernel.outputs[0]}[{_index(sets_k[-1], ik, ext)}] = {final}")
    return lines


def _render_column_sum(kernel, keep, red, ext):
    """A sum over leading dims (a bias gradient: (B, T, C) -> (C,)) as rows added into the output: the inner loop
    runs along the kept, contiguous dims and vectorises, where one accumulator per output would stride over rows."""
    dims_k, sets_k = _collapse([kernel.domain[d] for d in keep], [[a.strides[d] for d in keep] for a in
                                                                  kernel.reads] + [list(contiguous_strides(
                                                                      tuple(kernel.domain[d] for d in keep)))])
    dims_r, sets_r = _collapse([kernel.domain[d] for d in red], [[a.strides[d] for d in red] for a in kernel.reads])
    ik, ir = [f"i{k}" for k in range(len(dims_k))], [f"r{k}" for k in range(len(dims_r))]
    out, dtype = kernel.outputs[0], kernel.dtypes[kernel.outputs[0]]
    at = f"{out}[{_index(sets_k[-1], ik, ext)}]"
    pad_k = "    " * (len(dims_k) + 1)
    lines = _nest(dims_k, ik, False, ext) + [pad_k + f"{at} = zero_{dtype}"]
    hoisted, body = _loads(kernel, [sr + sk for sk, sr in zip(sets_k[:-1], sets_r)], ir + ik, ext)
    lines += _nest(dims_r, ir, False, ext) + _nest(dims_k, ik, False, ext, depth=len(dims_r) + 1)
    inner = "    " * (len(dims_r) + len(dims_k) + 1)
    lines += [inner + line for line in body] + [inner + f"{at} += {kernel.results[0]}"]
    if kernel.post:
        final = kernel.post[-1].var
        lines += _nest(dims_k, ik, False, ext) + [pad_k + f"acc = {at}"]
        lines += [pad_k + line for line in post_lines(kernel, dtype, ext)] + [pad_k + f"{at} = {final}"]
    return ["    " + line for line in hoisted] + lines


def post_lines(kernel, dtype, ext=str, expr=scalar_expr):
    """A reduction's `post` statements on its reduced value `acc` (scalar templates from `expr`: the CUDA renderer
    passes its own), after `count` (how many elements each output reduced: a mean divides by it) is defined."""
    if not kernel.post:
        return []
    count = math.prod(kernel.domain[a] for a in kernel.reduce_axes)
    return [f"count = {NP_TYPES[dtype]}({ext(count)})"] + [
        f"{st.var} = {expr(st.op, st.args, st.attr_dict(), dtype)}" for st in kernel.post]


# ---- the on-disk cache --------------------------------------------------------------------------------------------
def load(source, attr="kernel"):
    """Import `source` from its content-hashed file (written once; rewritten, with a warning, if found damaged) and
    return `attr`."""
    key = load_source_file(source)
    return load_digest(key, attr)


def load_source_file(source):
    """Write `source` to its content-hashed file unless a sound copy is there; return its digest."""
    key = digest(source)
    if _module_name(key) not in sys.modules and disk_cache.read(_path(key), key) is None:
        disk_cache.write(_path(key), source)
    return key


def is_loaded(source):
    """Whether this process has imported `source`'s module already (so its machine code is in memory)."""
    return _module_name(digest(source)) in sys.modules


def source_path(source):
    """Where `source` lives in the kernel cache."""
    return _path(digest(source))


def _path(key):
    return os.path.join(disk_cache.directory(), f"k_{key}.py")


def _module_name(key):
    return f"graphnet_kernels.k_{key}"


def load_digest(key, attr="kernel"):
    """`attr` of the cached kernel file named by `key` (a driver's generated globals load its kernels this way): the
    verified text is executed, so what runs is what was hashed."""
    modname = _module_name(key)
    if modname not in sys.modules:
        path = _path(key)
        text = disk_cache.read(path, key)
        if text is None:
            raise RuntimeError(f"graphnet: the kernel cache file {path} is missing or damaged and its source is not "
                               "known in this process; compile the model again to rebuild it")
        module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(modname, path))
        sys.modules[modname] = module
        exec(compile(text, path, "exec"), vars(module))
        disk_cache.guard_numba(module)
    return getattr(sys.modules[modname], attr)
