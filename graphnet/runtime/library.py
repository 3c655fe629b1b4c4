"""Program steps that call the shared library kernels: BLAS matmul, conv2d and its two gradients, max pooling,
log-softmax, cross-entropy rows. They are compiled once (cache=True) for every model; per model only the fused
groups are generated.

A library kernel is `(fn, half_args, join)`: `half_args(ins, outs, attrs, scratch)` returns `args(h, k)`, the
arguments of `fn` for batch slice h, which is half k. Run from Python with arrays, big conv/pool work calls `fn` on
the two halves at once (the kernels release the GIL; a helper thread takes one half), then `join`s them. Lowered
into a driver with `Source` names, `fn` runs once over the whole batch: Numba threads only inside parfors, and a
parallel driver costs seconds of compile time (so programs with split steps keep the Python step loop).
"""
import functools
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ..codegen import driver
from ..codegen.templates import conv, embedding, gemm, pool, recurrent, softmax
from ..ir.kernel import contiguous_strides
from ..ir.ops.recurrent import MODES
from .steps import Alias, Cat, SliceAdjoint, resolve, write_outputs

SPLIT_MIN = 1 << 18  # work (elements of a kernel's biggest array) below which a second thread costs more than it saves
THREADS = min(2, numba.config.NUMBA_NUM_THREADS)  # NUMBA_NUM_THREADS=1 keeps the conv/pool kernels single-threaded
MAX_DRIVER_STEPS = 200  # Numba's compile time grows faster than linearly in a function's size: a 4-layer GPT's
# training step (721 steps, 89 kB of driver source) took 135 s to compile as one driver, for 20% less run time
MIN_SEGMENT_STEPS = 16  # a run of steps between two host steps worth a driver of its own (see Program._parts)
SPLITTING_OPS = {"conv2d", "conv2d_input_grad", "conv2d_weight_grad", "max_pool2d", "max_pool2d_backward"}
_NO_BIAS = np.zeros(1, np.float32)


_WHOLE = slice(None)


class Source(str):
    """An array's name in generated source: indexing and reshape build source text, as they would build views; the
    sizes in it are the driver's literals (parameters in a shape-generic driver)."""

    def __new__(cls, text, d):
        source = super().__new__(cls, text)
        source.d = d
        return source

    def __getitem__(self, k):
        if k == _WHOLE:
            return self
        lit = self.d.literal
        return Source(f"{self}[{lit(k.start)}:{lit(k.stop)}]" if isinstance(k, slice) else f"{self}[{lit(k)}]",
                      self.d)

    def reshape(self, *shape):
        return Source(f"{self}.reshape({', '.join(map(self.d.literal, shape))})", self.d)


class Matmul:
    """BLAS into the planned buffer: NumPy's matmul from Python, the `gemm` template from a driver (float32: 2-d, an
    N-d operand times a 2-d one as one GEMM over its rows, or equal batch dims as a loop of GEMMs). From Python too
    an N-d operand times a 2-d one is one GEMM over its rows when it and the output are C-contiguous (the reshapes
    are views), not NumPy's loop over the batch (a Linear's (12, 64, 512) @ (512, 128): 0.40 against 0.76 ms); a
    strided one goes through np.matmul as it is. A following fused bias(+ReLU) over its output may be absorbed as
    its epilogue (attrs["epilogue"])."""

    def __init__(self, node, ins, outs, bufs):
        self.ins, self.out, self.buf = list(ins), outs[0], bufs[0]
        a, b = (v.type for v in node.inputs[:2])
        self.shapes = (a.shape, b.shape, node.outputs[0].type.shape)
        float32 = all(v.type.dtype.name == "float32" for v in node.inputs)
        self.form = None
        if float32 and a.ndim >= 2 and b.ndim == 2:
            self.form = "rows"
        elif float32 and a.ndim >= 3 and a.shape[:-2] == b.shape[:-2]:
            self.form = "batched"
        self.lowers = self.form == "rows"  # an epilogue can be absorbed (bias along the last dim of a 2-d GEMM)
        rows = int(np.prod(a.shape[:-1]))
        self.rows = ((rows, a.shape[-1]), (rows, b.shape[-1])) if a.ndim > 2 and b.ndim == 2 else None
        self.attrs = {"epilogue": (False, False)}

    def __call__(self, env):
        dst = resolve(self.buf, env)
        a = env[self.ins[0]]
        if self.rows is not None and a.flags.c_contiguous and dst.flags.c_contiguous:
            np.matmul(a.reshape(self.rows[0]), env[self.ins[1]], out=dst.reshape(self.rows[1]))
        else:
            np.matmul(a, env[self.ins[1]], out=dst)
        has_bias, relu = self.attrs["epilogue"]
        if has_bias or relu:
            n = dst.shape[-1]
            gemm.bias_relu(dst.reshape(-1, n), env[self.ins[2]] if has_bias else _NO_BIAS, has_bias, relu)
        env[self.out] = dst

    def lower(self, d):
        if self.form is None:
            raise driver.NoDriverForm("matmul other than float32 2-d, N-d @ 2-d or equal batch dims")
        (out,) = write_outputs(d, [self.out], [self.buf])
        a_shape, b_shape, c_shape = self.shapes
        if self.form == "batched":
            batch = int(np.prod(c_shape[:-2]))
            operands = [self._batched_operand(d, s, shape, batch) for s, shape in zip(self.ins, (a_shape, b_shape))]
            c3 = f"{out}.reshape({d.literal((batch,) + tuple(c_shape[-2:]))})"
            (a3, ta), (b3, tb) = operands
            d.call(d.function(gemm.gemm_batched), [a3, b3, c3, d.value(ta), d.value(tb), d.bind(_NO_BIAS)])
            return
        if len(a_shape) == 2:
            a, ta = (d.var(d.transposed[self.ins[0]]), True) if self.ins[0] in d.transposed \
                else (d.dense(self.ins[0]), False)
        else:
            a, ta = f"{d.dense(self.ins[0])}.reshape({d.literal((-1, a_shape[-1]))})", False
            out = f"{out}.reshape({d.literal((-1, c_shape[-1]))})"
        b, tb = (d.var(d.transposed[self.ins[1]]), True) if self.ins[1] in d.transposed else (d.dense(self.ins[1]),
                                                                                             False)
        has_bias, relu = self.attrs["epilogue"]
        bias = d.var(self.ins[2]) if has_bias else d.bind(_NO_BIAS)
        flags = [d.value(f) for f in (ta, tb, has_bias, relu)]
        d.call(d.function(gemm.gemm), [a, b, out, *flags[:2], bias, *flags[2:]])

    @staticmethod
    def _batched_operand(d, slot, shape, batch):
        """(3-d contiguous source, transpose flag): a view swapping the last two dims of a contiguous array is
        read as that array with the flag set (no copy)."""
        if slot in d.batch_transposed:
            return f"{d.var(d.batch_transposed[slot])}.reshape({d.literal((batch, shape[-1], shape[-2]))})", True
        return f"{d.dense(slot)}.reshape({d.literal((batch,) + tuple(shape[-2:]))})", False


def _matmul_step(node, ins, outs, bufs, shared):
    """A Matmul; a 2-d float32 one registers the fused bias/ReLU after it (when there is one) in `shared`."""
    step = Matmul(node, ins, outs, bufs)
    epilogue = bias_relu_epilogue(node, -1) if step.lowers else None
    if epilogue is not None:
        shared[epilogue[0]] = (step, node.outputs[0]) + epilogue[1:]
    return step


class Template:
    """One library-kernel call over contiguous inputs, planned outputs and the step's own scratch arrays; with
    `split`, over the two halves of the batch on two threads."""

    def __init__(self, node, ins, outs, bufs, kernel, scratch=(), split=False):
        self.ins, self.outs, self.bufs, self.split = ins, outs, bufs, split
        self.fn, self.half_args, self.join = kernel
        self.attrs, self.scratch = dict(node.attrs), list(scratch)
        self.batch = node.inputs[0].type.shape[0] if node.inputs[0].type.ndim else 0

    def __call__(self, env):
        dsts = [resolve(b, env) for b in self.bufs]
        args = self.half_args([np.ascontiguousarray(env[i]) for i in self.ins], dsts, self.attrs, self.scratch)
        if self.split:
            n = self.batch
            second = _helper().submit(self.fn, *args(slice(n // 2, n), 1))
            self.fn(*args(slice(0, n // 2), 0))
            second.result()
            if self.join is not None:
                self.join(dsts, self.scratch)
        else:
            self.fn(*args(_WHOLE, 0))
        for slot, d in zip(self.outs, dsts):
            env[slot] = d

    def lower(self, d):
        if self.split:
            raise driver.NoDriverForm(f"{self.fn.__name__} splits its batch over two threads")
        outs = [Source(name, d) for name in write_outputs(d, self.outs, self.bufs)]
        ins = [Source(d.dense(i), d) for i in self.ins]
        scratch = [Source(d.bind(a), d) if isinstance(a, np.ndarray) else a for a in self.scratch]
        args = self.half_args(ins, outs, self.attrs, scratch)(_WHOLE, 0)
        d.call(d.function(self.fn), [a if isinstance(a, Source) else d.value(a) for a in args])


@functools.cache
def _helper():
    return ThreadPoolExecutor(1, thread_name_prefix="graphnet-conv")


class StepLinks(dict):
    """What one step of a Program hands a later one (im2col columns, a fused epilogue absorbed by a conv or matmul),
    how many threads its conv/pool steps may split their batch over, and whether some do (`own_threads`)."""

    def __init__(self, graph):
        super().__init__()
        self.threads = batch_threads(graph)
        self.own_threads = own_threads(graph)


def batch_threads(graph):
    """2 for a forward-only Program, 1 for one that updates state (a compiled training step) and is small enough to
    run as one driver: split steps keep the Python step loop, and for LeNet's training step at batch 64 one driver
    call measured faster than the split loop (4.5 against 5.6 ms, interleaved in one process), while inference at
    batch 256 gains from the split (5.1 -> 3.9 ms). A training step too long for one driver runs its steps from
    Python anyway, so its convs split (ResNet-20's at batch 64: 253-269 ms a step against 538-564 ms unsplit,
    2026-12-08)."""
    if graph.writebacks and sum(n.op not in ("input", "output") for n in graph.nodes) <= MAX_DRIVER_STEPS:
        return 1
    return THREADS


def halves(shared, n, work):
    """Whether a kernel over a batch of n with this much work runs as two halves on two threads."""
    return n >= 2 and work >= SPLIT_MIN and shared.threads >= 2


def own_threads(graph):
    """True when some conv/pool step splits its batch over two threads; BLAS and the fused kernels then run
    single-threaded, or their threads and ours oversubscribe the cores (LeNet inference at batch 256: 7.4 -> 4.8 ms;
    a 2^20-element ResNet-20 kernel beside split convs on a busy machine: 12 ms as a prange, 0.2 ms serial)."""
    return batch_threads(graph) >= 2 and any(n.outputs[0].type.numel >= SPLIT_MIN
                                             for n in graph.nodes if n.op in SPLITTING_OPS)


# ---- conv2d --------------------------------------------------------------------------------------------------------
def _conv_geometry(node):
    """(x value, x shape, weight shape, output shape) of a conv node or either of its backward primitives."""
    a, out_t = node.attrs, node.outputs[0].type
    if node.op == "conv2d":
        return node.inputs[0], node.inputs[0].type.shape, node.inputs[1].type.shape, out_t.shape
    if node.op == "conv2d_weight_grad":
        return node.inputs[0], node.inputs[0].type.shape, a["weight_shape"], node.inputs[1].type.shape
    return None, a["input_shape"], node.inputs[1].type.shape, node.inputs[0].type.shape


def _conv_cols(node, shared):
    """(im2col scratch, whether the step must fill it, whether it is private) of a conv node. A conv2d whose columns
    a later conv2d_weight_grad of the same input and geometry will read (the forward step always runs first in the
    same Program run) gets all of them, (N, C*kh*kw, oh*ow), registered in `shared`; otherwise each batch half gets
    one private plane of (2, C*kh*kw, oh*ow) that every sample overwrites while it is in cache."""
    x, (n, c, _, _), (_, _, kh, kw), (_, _, oh, ow) = _conv_geometry(node)
    key = _cols_key(node)
    if node.op == "conv2d_weight_grad" and key in shared:
        return shared[key], False, False
    dtype = node.outputs[0].type.dtype.np
    if node.op == "conv2d" and any(user.op == "conv2d_weight_grad" and _cols_key(user) == key for user in x.users):
        shared[key] = np.empty((n, c * kh * kw, oh * ow), dtype)
        return shared[key], True, False
    return np.empty((2, c * kh * kw, oh * ow), dtype), True, True


def _cols_key(node):
    x, _, (_, _, kh, kw), _ = _conv_geometry(node)
    return (x, kh, kw) + tuple(tuple(node.attrs[k]) for k in ("stride", "padding", "dilation"))


def _geometry_args(a):
    return tuple(int(v) for k in ("stride", "padding", "dilation") for v in a[k])


def _columns(a, cols, h, k):
    """Batch slice h of all-sample columns, or half k's own plane."""
    return cols[k:k + 1] if a["private_cols"] else cols[h]


def _conv_forward_args(ins, outs, a, s):
    has_bias, relu = a["epilogue"]
    bias = ins[2] if has_bias else s[1]
    return lambda h, k: (ins[0][h], ins[1], bias, has_bias, relu, a["geometry"], a["groups"], _columns(a, s[0], h, k),
                         outs[0][h])


def _conv_weight_args(ins, outs, a, s):
    dws = (outs[0], s[3])
    return lambda h, k: (ins[0][h], ins[1][h], a["geometry"], a["groups"], s[2], _columns(a, s[0], h, k), s[1][k],
                         dws[k])


def _add_second_half(outs, s):
    outs[0] += s[3]


CONV_KERNELS = {  # op -> (kernel, half_args, join); scratch: see _conv_scratch
    "conv2d": (conv.conv2d_forward, _conv_forward_args, None),
    "conv2d_weight_grad": (conv.conv2d_weight_grad, _conv_weight_args, _add_second_half),
    "conv2d_input_grad": (conv.conv2d_input_grad, lambda ins, outs, a, s: lambda h, k: (
        ins[0][h], ins[1], a["geometry"], a["groups"], s[0][k], outs[0][h]), None),
}


def _conv_scratch(node, shared):
    """conv2d: [columns, a zero bias]; weight grad: [columns, (2, K, O) accumulators, whether to unfold, a
    second dw for the other half]; input grad: [(2, C*kh*kw, oh*ow) column gradients], one per batch half. Also
    whether the columns are one private plane per half (see _conv_cols)."""
    _, (_, c, _, _), weight_shape, (_, _, oh, ow) = _conv_geometry(node)
    dtype = node.outputs[0].type.dtype.np
    if node.op == "conv2d_input_grad":
        return [np.empty((2, c * weight_shape[2] * weight_shape[3], oh * ow), dtype)], False
    cols, unfold, private = _conv_cols(node, shared)
    if node.op == "conv2d":
        return [cols, _NO_BIAS], private
    groups = node.attrs["groups"]
    acc = np.empty((2, cols.shape[1] // groups, weight_shape[0] // groups), dtype)
    return [cols, acc, unfold, np.empty(weight_shape, dtype)], private


def _conv_step(node, ins, outs, bufs, shared):
    """A conv2d / conv2d_weight_grad / conv2d_input_grad step; a conv2d registers the fused bias/ReLU after it
    (when there is one) in `shared`, for that fused step to hand over."""
    scratch, private = _conv_scratch(node, shared)
    n = _conv_geometry(node)[1][0]
    work = n * scratch[0][0].size
    step = Template(node, ins, outs, bufs, CONV_KERNELS[node.op], scratch, split=halves(shared, n, work))
    step.attrs["geometry"] = tuple(int(v) for v in _conv_geometry(node)[2][2:]) + _geometry_args(node.attrs)
    step.attrs["epilogue"] = (False, False)
    step.attrs["private_cols"] = private
    epilogue = bias_relu_epilogue(node, 1) if node.op == "conv2d" and node.outputs[0].type.dtype.name == "float32" \
        else None
    if epilogue is not None:
        shared[epilogue[0]] = (step, node.outputs[0]) + epilogue[1:]
    return step


_EPILOGUES = {("add",): (True, False), ("add", "relu"): (True, True), ("relu",): (False, True)}


def bias_relu_epilogue(node, axis):
    """(fused node, bias value or None, relu) when the only user of a conv2d's or matmul's output is a fused loop
    that computes relu?(out + bias) in place over it, the bias broadcast along `axis` (1 for NCHW convs, the last
    dim for matmuls), so the producing kernel can apply it while its output is in cache. The bias must be a graph
    input: it then exists before the producing step runs."""
    out = node.outputs[0]
    users = list(out.users)
    fused = users[0] if len(users) == 1 else None
    if fused is None or fused.op != "fused" or fused.meta.get("inplace") != {0: out.name}:
        return None
    k = fused.attrs["kernel"]
    loads = [st for st in k.body if st.op == "load"]
    ops = tuple(st.op for st in k.body if st.op != "load")
    if k.is_reduction or k.post or ops not in _EPILOGUES or len(loads) != len(k.body) - len(ops):
        return None
    reads = [k.reads[st.args[0]] for st in loads]
    by_input = {fused.inputs[int(r.buffer[2:])]: r for r in reads}
    rest = [v for v in by_input if v is not out]
    own = by_input.get(out)
    if own is None or own.strides != contiguous_strides(out.type.shape) or own.offset or k.domain != out.type.shape:
        return None
    has_bias, relu = _EPILOGUES[ops]
    if not has_bias:
        return (fused, None, relu) if not rest else None
    bias = rest[0] if len(rest) == 1 else None
    along = tuple(int(d == axis % out.type.ndim) for d in range(out.type.ndim))
    if bias is None or bias.producer.op != "input" or bias.type.shape != (out.type.shape[axis],) \
            or bias.type.dtype != out.type.dtype or by_input[bias].strides != along or by_input[bias].offset:
        return None
    return fused, bias, relu


def absorb(fused, ins, outs, link):
    """Hand a fused epilogue's bias slot and ReLU to the conv2d or matmul step that registered it; the fused step
    aliases."""
    step, conv_out, bias, relu = link
    step.attrs["epilogue"] = (bias is not None, relu)
    if bias is not None:
        step.ins = step.ins + [ins[fused.inputs.index(bias)]]
    return Alias(ins[fused.inputs.index(conv_out)], outs[0])


# ---- pooling, log-softmax, cross-entropy, matmul -------------------------------------------------------------------
def _max_pool_args(ins, outs, a, s):
    geometry = (*(int(v) for v in a["kernel_size"]), *_geometry_args(a))
    return lambda h, k: (ins[0][h], *geometry, outs[0][h], outs[1][h])


def _max_pool_step(node, ins, outs, bufs, shared):
    if node.attrs.get("ceil_mode"):
        return None
    x = node.inputs[0].type
    return Template(node, ins, outs, bufs, (pool.max_pool2d_forward, _max_pool_args, None),
                    split=halves(shared, x.shape[0], x.numel))


def _max_pool_back_args(ins, outs, a, s):
    return lambda h, k: (ins[0][h], ins[1][h], outs[0][h])


def _max_pool_back_step(node, ins, outs, bufs, shared):
    g = node.inputs[0].type
    return Template(node, ins, outs, bufs, (pool.max_pool2d_backward, _max_pool_back_args, None),
                    split=halves(shared, g.shape[0], g.numel))


def _log_softmax_args(ins, outs, a, s):
    return lambda h, k: (ins[0].reshape(-1, a["row"]), outs[0].reshape(-1, a["row"]))


def _log_softmax_step(node, ins, outs, bufs, shared):
    t = node.inputs[0].type
    if node.attrs["dim"] % t.ndim != t.ndim - 1 or t.shape[-1] == 0:
        return None
    step = Template(node, ins, outs, bufs, (softmax.log_softmax_rows, _log_softmax_args, None))
    step.attrs["row"] = t.shape[-1]
    return step


def _rows_args(ins, outs, a, s):
    return lambda h, k: (*ins, a["ignore_index"], outs[0])


def _rows_step(fn):
    """A builder for a cross-entropy row kernel: fn(*inputs, ignore_index, out) over the whole batch."""
    return lambda node, ins, outs, bufs, shared: Template(node, ins, outs, bufs, (fn, _rows_args, None))


def _check_args(ins, outs, a, s):
    return lambda h, k: (ins[0].reshape(-1), a["n_classes"], a["ignore_index"], outs[0].reshape(-1))


def _check_step(node, ins, outs, bufs, shared):
    """check_targets: the targets copied into the planned buffer by a kernel that raises for a bad one (its
    output is a buffer of its own, so the memory plan stays true)."""
    return Template(node, ins, outs, bufs, (softmax.check_targets, _check_args, None))


def _embedding_args(ins, outs, a, s):
    return lambda h, k: (ins[0].reshape(-1, a["dim"]), ins[1].reshape(-1), outs[0].reshape(-1, a["dim"]))


def _embedding_step(fn):
    """A row lookup / row scatter-add step: fn(table or grads, flat ids, out) as 2-d (rows, dim) views."""
    def build(node, ins, outs, bufs, shared):
        step = Template(node, ins, outs, bufs, (fn, _embedding_args, None))
        step.attrs["dim"] = node.outputs[0].type.shape[-1]
        return step

    return build


def _scan_args(ins, outs, a, s):
    return lambda h, k: (*ins, a["code"], a["reverse"], *outs)


def _scan_step(fn):
    """A recurrent layer's whole time loop (rnn_scan) or its backward-through-time as one kernel call."""
    def build(node, ins, outs, bufs, shared):
        step = Template(node, ins, outs, bufs, (fn, _scan_args, None))
        step.attrs.update(code=MODES[node.attrs["mode"]], reverse=bool(node.attrs["reverse"]))
        return step

    return build


def _into_buffer(step):
    """A builder of a step that writes its planned buffer piece by piece (SliceAdjoint, Cat): none where the output
    overwrites an input in place (the first write would clobber what a later one reads)."""
    return lambda node, ins, outs, bufs, shared: None if bufs[0][0] == "input" else step(node, ins, outs, bufs)


# OpDef.kernel -> builder(node, ins, outs, bufs, shared) of its library-kernel step (None: not applicable here)
LIBRARY_STEPS = {
    "gemm": _matmul_step,
    "conv2d": _conv_step,
    "conv2d_weight_grad": _conv_step,
    "conv2d_input_grad": _conv_step,
    "max_pool2d": _max_pool_step,
    "max_pool2d_backward": _max_pool_back_step,
    "log_softmax": _log_softmax_step,
    "cross_entropy_rows": _rows_step(softmax.cross_entropy_rows),
    "cross_entropy_rows_backward": _rows_step(softmax.cross_entropy_rows_backward),
    "check_targets": _check_step,
    "embedding": _embedding_step(embedding.embedding_rows),
    "embedding_backward": _embedding_step(embedding.embedding_rows_backward),
    "rnn_scan": _scan_step(recurrent.rnn_scan),
    "rnn_scan_backward": _scan_step(recurrent.rnn_scan_backward),
    "slice_adjoint": _into_buffer(SliceAdjoint),
    "cat": _into_buffer(Cat),
}
