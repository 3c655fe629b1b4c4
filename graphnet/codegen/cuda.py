"""Render kernels to numba.cuda.jit source, and load them through the same hashed-file cache as cpu.py.

Two families, one text generator: a `LoopKernel` (shapes and strides baked in as constants, for compiled
programs) and the eager single-op kernels (rank baked in, sizes/strides/offsets passed as scalar arguments, so one
compiled kernel serves every shape of that rank). Elementwise kernels are grid-stride loops over the flat output;
reductions give each output element to one block, whose threads stride over the reduced elements and combine
through a shared-memory tree. Rendering is pure string work: Numba is imported only to launch.
"""
from ..ir.kernel import contiguous_strides
from ..ir.ops import OPS
from . import cpu
from .cpu import NP_TYPES, NUMBA_TYPES, _collapse

# CUDA overrides of the ops' scalar templates: keep float32 math in float32; no numpy sign() on the device.
# floor/trunc keep the ops' math.* templates on the device (NumPy's are host functions)
CUDA_EXPR = {**{k: v for k, v in cpu.CPU_EXPR.items() if k not in ("floor", "trunc")}, "logical_not": "(not {0})"}
REDUCE_COMBINE = {"sum": "{a} + {b}", "prod": "{a} * {b}", "max": "({b} if {b} > {a} or {b} != {b} else {a})",
                  "min": "({b} if {b} < {a} or {b} != {b} else {a})"}
_INT_LIMITS = {"int64": (-(1 << 63), (1 << 63) - 1), "int32": (-(1 << 31), (1 << 31) - 1),
               "int16": (-(1 << 15), (1 << 15) - 1), "int8": (-128, 127), "uint8": (0, 255), "bool": (0, 1)}
THREADS, MAX_BLOCKS = 256, 4096  # on a GPU
SIM_THREADS, SIM_MAX_BLOCKS = 32, 2  # under the simulator: one Python thread per CUDA thread


def scalar_expr(op, args, attrs, dtype):
    """The device scalar expression of one elementwise op applied to argument expressions `args`."""
    if op == "cast":
        target = attrs["dtype"].name
        return f"({args[0]} != 0)" if target == "bool" else f"{NP_TYPES[target]}({args[0]})"
    if op == "clamp":
        return cpu.clamp_expr(args[0], attrs, dtype)  # absent bounds written out, NaN propagating as on the CPU
    if op == "clamp_tensor":
        return cpu.clamp_tensor_expr(args, attrs, CUDA_EXPR)
    template = CUDA_EXPR.get(op) or OPS[op].expr
    if template is None:
        raise NotImplementedError(f"cuda codegen: op {op!r} has no scalar template")
    fields = {k: repr(v) for k, v in attrs.items()}
    return template.format(*args, t=dtype, **fields)


def reduce_init(reduce_op, dtype):
    if reduce_op in ("sum", "prod"):
        return f"{NP_TYPES[dtype]}({int(reduce_op == 'prod')})"
    if dtype.startswith("float"):
        return f"{NP_TYPES[dtype]}({'-' if reduce_op == 'max' else ''}np.inf)"
    lo, hi = _INT_LIMITS[dtype]
    return f"{NP_TYPES[dtype]}({lo if reduce_op == 'max' else hi})"


def _header(dtypes, threads=None):
    consts = [f"zero_{t} = {NP_TYPES[t]}(0)\none_{t} = {NP_TYPES[t]}(1)" for t in sorted(set(dtypes))]
    lines = ["import math", "import numpy as np", "from numba import cuda",
             "from numba import types  # noqa: F401",
             "", *consts]
    if threads is not None:
        lines.append(f"THREADS = {threads}")
    return lines + ["", "", "@cuda.jit(cache=True)"]


def _decompose(flat, ivars, dims, pad):
    """Lines splitting the flat index `flat` into per-dim indices (row-major); dims are source strings."""
    if not ivars:
        return []
    lines = [f"{pad}_rem = {flat}"]
    for d in range(len(ivars) - 1, 0, -1):
        lines += [f"{pad}{ivars[d]} = _rem % {dims[d]}", f"{pad}_rem = _rem // {dims[d]}"]
    return lines + [f"{pad}{ivars[0]} = _rem"]


def _index(strides, ivars, offset="0"):
    terms = [f"{i} * {s}" for i, s in zip(ivars, strides) if s != "0"]
    if offset != "0":
        terms.append(offset)
    return " + ".join(terms) or "0"


# ---- eager single-op kernels (shape-generic) ---------------------------------------------------------------------
def _eager_params(n_in, rank):
    dims = [f"d{d}" for d in range(rank)]
    strides = [[f"s{k}_{d}" for d in range(rank)] for k in range(n_in + 1)]
    offsets = [f"o{k}" for k in range(n_in + 1)]
    return dims, strides, offsets


def render_elementwise(op, in_dtypes, out_dtype, rank, attrs=()):
    """`kernel(out, x0.., n, d.., strides of out, x0.. (per dim), offsets of out, x0..)` over flat 1-D buffers.

    Operand k (0 = the output) lives at o_k + sum_d i_d * s_k_d: broadcasts, permutes and slices are strides."""
    attrs = dict(attrs)
    n_in = len(in_dtypes)
    dims, strides, offsets = _eager_params(n_in, rank)
    ins = [f"x{k}" for k in range(n_in)]
    params = ["out", *ins, "n", *dims, *(s for row in strides for s in row), *offsets]
    ivars = [f"i{d}" for d in range(rank)]
    pad = " " * 8
    lines = _header([*in_dtypes, out_dtype]) + [f"def kernel({', '.join(params)}):",
                                                "    for _i in range(cuda.grid(1), n, cuda.gridsize(1)):"]
    lines += _decompose("_i", ivars, dims, pad)
    lines += [f"{pad}v{k} = x{k}[{_index(strides[k + 1], ivars, offsets[k + 1])}]" for k in range(n_in)]
    expr = scalar_expr(op, [f"v{k}" for k in range(n_in)], attrs, in_dtypes[-1] if n_in else out_dtype)
    lines.append(f"{pad}out[{_index(strides[0], ivars, offsets[0])}] = {expr}")
    return "\n".join(lines) + "\n"


def _reduction_tail(reduce_op, pad, post, out_index):
    """Shared-memory tree combine of each thread's `acc`, then thread 0 applies `post` and stores."""
    combine = REDUCE_COMBINE[reduce_op].format(a="_sm[_tid]", b="_sm[_tid + _s]")
    return [f"{pad}_sm[_tid] = acc", f"{pad}cuda.syncthreads()", f"{pad}_s = THREADS // 2", f"{pad}while _s > 0:",
            f"{pad}    if _tid < _s:", f"{pad}        _sm[_tid] = {combine}", f"{pad}    cuda.syncthreads()",
            f"{pad}    _s //= 2", f"{pad}if _tid == 0:", f"{pad}    out[{out_index}] = {post.format('_sm[0]')}",
            f"{pad}cuda.syncthreads()"]


def _reduction_loop(reduce_op, acc_dtype, keep, red, pad=" " * 8):
    """Body of a block-per-output reduction: `keep`/`red` = (ivars, dims, strides) as source strings."""
    (ik, dk, _), (ir, dr, sr) = keep, red
    step = REDUCE_COMBINE[reduce_op].format(a="acc", b=f"{NP_TYPES[acc_dtype]}(x[base + {_index(sr, ir)}])")
    lines = _decompose("_o", ik, dk, pad) + [f"{pad}base = {_index(keep[2], ik, 'off')}",
                                             f"{pad}acc = {reduce_init(reduce_op, acc_dtype)}",
                                             f"{pad}for _r in range(_tid, nred, THREADS):"]
    lines += _decompose("_r", ir, dr, pad + "    ") + [f"{pad}    acc = {step}"]
    return lines


def render_reduction(reduce_op, in_dtype, out_dtype, keep_rank, red_rank, threads, mean=False, tree=True):
    """`kernel(x, out, nout, nred, off, dk.., sk.., dr.., sr.., count)`: out[o] = reduce over the `red` dims.

    tree: one block per output, combined in shared memory (long reductions); else one thread per output (short)."""
    dk, sk = [f"dk{d}" for d in range(keep_rank)], [f"sk{d}" for d in range(keep_rank)]
    dr, sr = [f"dr{d}" for d in range(red_rank)], [f"sr{d}" for d in range(red_rank)]
    ik, ir = [f"i{d}" for d in range(keep_rank)], [f"j{d}" for d in range(red_rank)]
    params = ["x", "out", "nout", "nred", "off", *dk, *sk, *dr, *sr, "count"]
    post = "{} / count" if mean else "{}"
    lines = _header([in_dtype, out_dtype], threads if tree else 1) + [f"def kernel({', '.join(params)}):"]
    if not tree:
        lines += ["    _tid = 0", "    for _o in range(cuda.grid(1), nout, cuda.gridsize(1)):"]
        lines += _reduction_loop(reduce_op, out_dtype, (ik, dk, sk), (ir, dr, sr))
        return "\n".join(lines + [f"        out[_o] = {post.format('acc')}"]) + "\n"
    lines += [f"    _sm = cuda.shared.array(THREADS, types.{NUMBA_TYPES[out_dtype]})", "    _tid = cuda.threadIdx.x",
              "    for _o in range(cuda.blockIdx.x, nout, cuda.gridDim.x):"]
    lines += _reduction_loop(reduce_op, out_dtype, (ik, dk, sk), (ir, dr, sr))
    lines += _reduction_tail(reduce_op, " " * 8, post, "_o")
    return "\n".join(lines) + "\n"


def use_tree(nout, nred):
    """A block per output pays off for long reductions over few outputs; otherwise a thread per output."""
    return nred > 64 and nout <= 1024


# ---- LoopKernel (shapes baked in) --------------------------------------------------------------------------------
def _body(kernel, strides, ivars, pad):
    lines = []
    for st in kernel.body:
        dtype = kernel.dtypes.get(st.var, kernel.dtypes[kernel.outputs[0]])
        if st.op == "load":
            acc = kernel.reads[st.args[0]]
            rhs = f"{acc.buffer}[{_index(strides[st.args[0]], ivars, str(acc.offset))}]"
        elif st.op == "const":
            rhs = f"{NP_TYPES[dtype]}({st.args[0]!r})"
        else:
            rhs = scalar_expr(st.op, st.args, st.attr_dict(), dtype)
        lines.append(f"{pad}{st.var} = {rhs}")
    return lines


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def render(kernel, threads=THREADS, parts=1):
    """Python source of a module defining the CUDA `kernel(*inputs, *outputs)` over flat 1-D buffers. A reduction
    with `parts` > 1 is the first of two passes: block q reduces slice q % parts of output q // parts into
    `out0[q]`, a partial without the `post` statements (see render_partials for the second pass). A
    HorizontalKernel's members are grid-stride loops in turn, one launch for all (members are independent)."""
    dtypes = [t for t in kernel.dtypes.values()]
    head = _header(dtypes, threads) + [f"def kernel({', '.join((*kernel.inputs, *kernel.outputs))}):"]
    body = _render_reduction(kernel, parts) if kernel.is_reduction else [
        line for m in kernel.members for line in _render_elementwise(m)]
    return "\n".join(head + body) + "\n"


def render_partials(kernel, parts):
    """The second pass of a split reduction: `kernel(partials, out0)` combines each output's `parts` partials (a
    thread per output) and applies the reduction's `post` statements."""
    dtype = kernel.dtypes[kernel.outputs[0]]
    nout = _numel([n for d, n in enumerate(kernel.domain) if d not in kernel.reduce_axes])
    step = REDUCE_COMBINE[kernel.reduce_op].format(a="acc", b=f"partials[_o * {parts} + _p]")
    post = [f"        {line}" for line in cpu.post_lines(kernel, dtype, expr=scalar_expr)]
    final = kernel.post[-1].var if kernel.post else "acc"
    lines = _header([dtype]) + ["def kernel(partials, out0):",
                                f"    for _o in range(cuda.grid(1), {nout}, cuda.gridsize(1)):",
                                f"        acc = {reduce_init(kernel.reduce_op, dtype)}",
                                f"        for _p in range({parts}):", f"            acc = {step}", *post,
                                f"        out0[_o] = {final}"]
    return "\n".join(lines) + "\n"


def _strs(seq):
    return [str(s) for s in seq]


def _render_elementwise(kernel):
    out_strides = contiguous_strides(kernel.domain)
    dims, sets = _collapse(kernel.domain, [a.strides for a in kernel.reads] + [out_strides])
    ivars = [f"i{k}" for k in range(len(dims))]
    pad = " " * 8
    lines = [f"    for _i in range(cuda.grid(1), {_numel(kernel.domain)}, cuda.gridsize(1)):"]
    lines += _decompose("_i", ivars, _strs(dims), pad)
    lines += _body(kernel, [_strs(s) for s in sets[:-1]], ivars, pad)
    out_index = _index(_strs(sets[-1]), ivars)
    return lines + [f"{pad}{buf}[{out_index}] = {var}" for buf, var in zip(kernel.outputs, kernel.results)]


def _render_reduction(kernel, parts):
    keep = [d for d in range(len(kernel.domain)) if d not in kernel.reduce_axes]
    red = list(kernel.reduce_axes)
    out_st = contiguous_strides(tuple(kernel.domain[d] for d in keep))
    dims_k, sets_k = _collapse([kernel.domain[d] for d in keep],
                               [[a.strides[d] for d in keep] for a in kernel.reads] + [list(out_st)])
    dims_r, sets_r = _collapse([kernel.domain[d] for d in red], [[a.strides[d] for d in red] for a in kernel.reads])
    ik, ir = [f"i{k}" for k in range(len(dims_k))], [f"j{k}" for k in range(len(dims_r))]
    dtype, pad = kernel.dtypes[kernel.outputs[0]], " " * 12
    nred = _numel(dims_r)
    chunk = -(-nred // parts)
    lines = [f"    _sm = cuda.shared.array(THREADS, types.{NUMBA_TYPES[dtype]})", "    _tid = cuda.threadIdx.x",
             f"    for _q in range(cuda.blockIdx.x, {_numel(dims_k) * parts}, cuda.gridDim.x):",
             f"        _o, _p = _q // {parts}, _q % {parts}"]
    lines += _decompose("_o", ik, _strs(dims_k), " " * 8)
    lines += [f"        acc = {reduce_init(kernel.reduce_op, dtype)}",
              f"        for _r in range(_p * {chunk} + _tid, min({nred}, _p * {chunk} + {chunk}), THREADS):"]
    lines += _decompose("_r", ir, _strs(dims_r), pad)
    strides = [_strs(sk) + _strs(sr) for sk, sr in zip(sets_k[:-1], sets_r)] if dims_r else \
        [_strs(s) for s in sets_k[:-1]]
    lines += _body(kernel, strides, ik + ir, pad)
    lines.append(f"{pad}acc = {REDUCE_COMBINE[kernel.reduce_op].format(a='acc', b=kernel.results[0])}")
    post = cpu.post_lines(kernel, dtype, expr=scalar_expr)
    final = kernel.post[-1].var if kernel.post else "acc"
    tail = _reduction_tail(kernel.reduce_op, " " * 8, "{}", _index(_strs(sets_k[-1]), ik))
    at_store = tail.index("        if _tid == 0:") + 1
    store = [f"            {kernel.outputs[0]}[_q] = _sm[0]"] if parts > 1 else [
        "            acc = _sm[0]", *("            " + p for p in post),
        f"            {kernel.outputs[0]}[{_index(_strs(sets_k[-1]), ik)}] = {final}"]
    tail[at_store:at_store + 1] = store
    return lines + tail


# ---- loading and launching ---------------------------------------------------------------------------------------
def load(source, attr="kernel"):
    """Import `source` through cpu.py's content-hashed module cache (cuda.jit(cache=True) keeps the machine code)."""
    return cpu.load(source, attr)


def launch_limits():
    """(threads per block, max blocks) for this process: small under the simulator, where threads are Python's."""
    from numba import config

    return (SIM_THREADS, SIM_MAX_BLOCKS) if config.ENABLE_CUDASIM else (THREADS, MAX_BLOCKS)


def grid_for(n):
    """(blocks, threads) for a grid-stride loop over `n` items."""
    threads, max_blocks = launch_limits()
    return max(1, min(max_blocks, -(-n // threads))), threads
