"""A compiled CPU Program: the planned graph as an ordered list of kernel calls over one arena of buffers.

Fused groups run their generated Numba kernels; conv/pool run the shared library kernels; matmul runs BLAS into
its planned buffer; views are NumPy views (free); any other op runs its NumPy `impl` and is copied into place.
"""
import functools
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ..codegen import cpu
from ..codegen.kernel import contiguous_strides
from ..codegen.templates import conv, pool, softmax
from ..passes.fuse import VIEW_OPS


class Program:
    """Built once per graph; `run(inputs)` returns (outputs, write-back arrays) in graph order."""

    def __init__(self, graph):
        self.graph = graph
        plan = graph.meta.get("plan_memory", {})
        self.arena = np.empty(max(plan.get("arena_bytes", 0), 1), np.uint8)
        self.slots = {}
        self.inputs = [self._slot(v) for v in graph.inputs]
        self.compile_seconds = {}
        self.step_links = {}  # what one step hands a later one: im2col columns, a fused epilogue absorbed by a conv
        self.steps = []
        for node in graph.nodes:
            if node.op == "constant":
                self.steps.append(_Const(self._slot(node.outputs[0]), node.attrs["value"]))
            elif node.op not in ("input", "output"):
                self.steps.append(self._step(node))
        self.outputs = [self._slot(v) for v in graph.outputs]
        self.single_blas = own_threads(graph)
        seen = set()
        self.owned_outputs = [v.index in v.producer.meta.get("fresh", ()) and not (v in seen or seen.add(v))
                              for v in graph.outputs]
        self.writebacks = [(self._slot(wb.value), self._slot(wb.target), wb.kind) for wb in graph.writebacks]
        self.inplace_writebacks = {i for i, wb in enumerate(graph.writebacks)
                                   if wb.target.name in wb.value.producer.meta.get("inplace", {}).values()}

    def _slot(self, v):
        return self.slots.setdefault(v, len(self.slots))

    def _buffer(self, node, index):
        """The array a node writes its output `index` into: its arena block, or the input it overwrites."""
        v = node.outputs[index]
        inplace = node.meta.get("inplace", {}).get(index)
        if inplace is not None:
            return ("input", next(self._slot(x) for x in node.inputs if x.name == inplace))
        if index in node.meta.get("fresh", ()):
            return ("fresh", (v.type.shape, v.type.dtype.np))
        off, nbytes = node.meta["buffers"][index]
        arr = self.arena[off:off + nbytes].view(v.type.dtype.np).reshape(v.type.shape)
        return ("arena", arr)

    def _step(self, node):
        t0 = time.perf_counter()
        ins = [self._slot(v) for v in node.inputs]
        outs = [self._slot(v) for v in node.outputs]
        if node.op in VIEW_OPS:
            step = _Impl(node, ins, outs, None)
        else:
            bufs = [self._buffer(node, i) for i in range(len(node.outputs))]
            step = _make_step(node, ins, outs, bufs, self.step_links)
        self.compile_seconds[node.op] = self.compile_seconds.get(node.op, 0.0) + time.perf_counter() - t0
        return step

    def run(self, inputs):
        if self.single_blas:
            with _blas_controller().limit(limits=1):
                return self._run(inputs)
        return self._run(inputs)

    def _run(self, inputs):
        env = [None] * len(self.slots)
        for slot, arr in zip(self.inputs, inputs):
            env[slot] = arr
        for step in self.steps:
            step(env)
        outputs = [env[s] for s in self.outputs]
        wbs = [env[v] for v, _, _ in self.writebacks]
        return outputs, wbs


class _Const:
    def __init__(self, slot, value):
        self.slot, self.value = slot, value

    def __call__(self, env):
        env[self.slot] = self.value


class _Impl:
    """Any op through its NumPy impl (views stay views); results copied into planned buffers when given."""

    def __init__(self, node, ins, outs, bufs):
        self.impl, self.attrs, self.ins, self.outs, self.bufs = node.opdef.impl, dict(node.attrs), ins, outs, bufs
        self.multi = node.opdef.n_outputs != 1

    def __call__(self, env):
        res = self.impl(*(env[i] for i in self.ins), **self.attrs)
        res = res if self.multi else (res,)
        for k, (slot, r) in enumerate(zip(self.outs, res)):
            if self.bufs is None:
                env[slot] = r
            else:
                dst = _resolve(self.bufs[k], env)
                np.copyto(dst, r, casting="unsafe")
                env[slot] = dst


def _resolve(buf, env):
    kind, ref = buf
    if kind == "fresh":
        return np.empty(*ref)
    return env[ref] if kind == "input" else ref


class _Fused:
    """A generated kernel over flat arrays. Outputs that live in the arena have their flat views made once: this
    step runs every training step, so per-call Python work is what it costs beyond the kernel."""

    def __init__(self, node, ins, outs, bufs):
        self.fn = cpu.load(cpu.render(node.attrs["kernel"]))
        self.ins, self.outs, self.bufs = ins, outs, bufs
        self.fixed = all(kind == "arena" for kind, _ in bufs)
        if self.fixed:
            self.flat_dsts = [ref.reshape(-1) for _, ref in bufs]
            self.results = list(zip(outs, (ref for _, ref in bufs)))

    def __call__(self, env):
        if self.fixed:
            self.fn(*[env[i].reshape(-1) for i in self.ins], *self.flat_dsts)
            for slot, d in self.results:
                env[slot] = d
            return
        dsts = [_resolve(b, env) for b in self.bufs]
        self.fn(*(env[i].reshape(-1) for i in self.ins), *(d.reshape(-1) for d in dsts))
        for slot, d in zip(self.outs, dsts):
            env[slot] = d


class _Matmul:
    def __init__(self, node, ins, outs, bufs):
        self.ins, self.out, self.buf = ins, outs[0], bufs[0]

    def __call__(self, env):
        dst = _resolve(self.buf, env)
        np.matmul(env[self.ins[0]], env[self.ins[1]], out=dst)
        env[self.out] = dst


class _Template:
    """conv/pool library kernels: `call(contiguous_input_arrays, dst_arrays, attrs, scratch_arrays)`."""

    def __init__(self, node, ins, outs, bufs, call, scratch=()):
        self.ins, self.outs, self.bufs, self.call = ins, outs, bufs, call
        self.attrs, self.scratch = dict(node.attrs), list(scratch)

    def __call__(self, env):
        dsts = [_resolve(b, env) for b in self.bufs]
        self.call([np.ascontiguousarray(env[i]) for i in self.ins], dsts, self.attrs, self.scratch)
        for slot, d in zip(self.outs, dsts):
            env[slot] = d


def _conv_geometry(node):
    """(x value, x shape, weight shape, output shape) of a conv node or either of its backward primitives."""
    a, out_t = node.attrs, node.outputs[0].type
    if node.op == "conv2d":
        return node.inputs[0], node.inputs[0].type.shape, node.inputs[1].type.shape, out_t.shape
    if node.op == "conv2d_weight_grad":
        return node.inputs[0], node.inputs[0].type.shape, a["weight_shape"], node.inputs[1].type.shape
    return None, a["input_shape"], node.inputs[1].type.shape, node.inputs[0].type.shape


def _conv_cols(node, shared):
    """The (N, C*kh*kw, oh*ow) im2col scratch of a conv node, and whether it must fill it itself. conv2d registers
    its columns under (input, geometry); a later conv2d_weight_grad of the same input and geometry reuses them, as
    the forward step always runs first in the same Program run."""
    x, (n, c, _, _), (_, _, kh, kw), (_, _, oh, ow) = _conv_geometry(node)
    key = (x, kh, kw) + tuple(tuple(node.attrs[k]) for k in ("stride", "padding", "dilation"))
    if node.op == "conv2d_weight_grad" and key in shared:
        return shared[key], False
    cols = np.empty((n, c * kh * kw, oh * ow), node.outputs[0].type.dtype.np)
    if node.op == "conv2d":
        shared[key] = cols
    return cols, True


_NO_BIAS = np.zeros(1, np.float32)


def _geometry_args(a):
    return (*a["stride"], *a["padding"], *a["dilation"])


def _conv_geo(a, weight_shape):
    """The conv templates' geometry tuple (kh, kw, sh, sw, ph, pw, dh, dw)."""
    return (*weight_shape[2:], *_geometry_args(a))


_SPLIT_MIN = 1 << 18  # work (elements of a kernel's biggest array) below which a second thread costs more than it saves
_THREADS = min(2, numba.config.NUMBA_NUM_THREADS)  # NUMBA_NUM_THREADS=1 keeps the conv/pool kernels single-threaded


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def own_threads(graph):
    """True when the program splits conv/pool work over two threads itself; BLAS then runs single-threaded,
    or its threads and ours oversubscribe the cores (LeNet inference at batch 256: 7.4 -> 4.8 ms)."""
    return _THREADS >= 2 and any(n.op in _SPLITTING_OPS and n.outputs[0].type.numel >= _SPLIT_MIN
                                 for n in graph.nodes if n.op in _SPLITTING_OPS)


_SPLITTING_OPS = {"conv2d", "conv2d_input_grad", "conv2d_weight_grad", "max_pool2d", "max_pool2d_backward"}


@functools.cache
def _helper():
    return ThreadPoolExecutor(1, thread_name_prefix="graphnet-conv")


def _split(kernel, n, work, args):
    """kernel(*args(batch_slice, k)) over the two halves k of a batch of n at once: the kernels release the GIL, a
    helper thread takes one half and the caller the other. Small work, or one thread, runs whole as k=0. Returns
    whether it split."""
    if n < 2 or work < _SPLIT_MIN or _THREADS < 2:
        kernel(*args(slice(0, n), 0))
        return False
    second = _helper().submit(kernel, *args(slice(n // 2, n), 1))
    kernel(*args(slice(0, n // 2), 0))
    second.result()
    return True


def _conv_forward(ins, outs, a, s):
    x, w = ins[:2]
    has_bias, relu = a.get("epilogue", (False, False))
    bias, geo, cols = ins[2] if has_bias else _NO_BIAS, _conv_geo(a, w.shape), s[0]
    _split(conv.conv2d_forward, x.shape[0], cols.size,
           lambda h, k: (x[h], w, bias, has_bias, relu, geo, a["groups"], cols[h], outs[0][h]))


_EPILOGUES = {("add",): (True, False), ("add", "relu"): (True, True), ("relu",): (False, True)}


def _epilogue(node):
    """(fused node, bias value or None, relu) when the only user of a float32 conv2d's output is a fused loop that
    computes relu?(out + bias[None, :, None, None]) in place over it, so the conv can apply it while in cache. The bias
    must be a graph input: it then exists before the conv step runs."""
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
    if bias is None or bias.producer.op != "input" or bias.type.shape != out.type.shape[1:2] \
            or bias.type.dtype.name != "float32" or by_input[bias].strides != (0, 1, 0, 0) or by_input[bias].offset:
        return None
    return fused, bias, relu


def _conv_weight(ins, outs, a, s):
    (x, g), (cols, acc, unfold, part), geo = ins, s, _conv_geo(a, a["weight_shape"])
    dws = (outs[0], part)
    if _split(conv.conv2d_weight_grad, x.shape[0], cols.size,
              lambda h, k: (x[h], g[h], geo, a["groups"], unfold, cols[h], acc[k], dws[k])):
        outs[0] += part


def _conv_input(ins, outs, a, s):
    (g, w), dcols, geo = ins, s[0], _conv_geo(a, ins[1].shape)
    _split(conv.conv2d_input_grad, g.shape[0], g.shape[0] * dcols[0].size,
           lambda h, k: (g[h], w, geo, a["groups"], dcols[k], outs[0][h]))


def _conv_step(node, ins, outs, bufs, shared):
    """A conv2d / conv2d_weight_grad / conv2d_input_grad step with its scratch (columns, accumulator)."""
    if node.op == "conv2d_input_grad":
        _, (_, c, _, _), (_, _, kh, kw), (_, _, oh, ow) = _conv_geometry(node)
        dcols = np.empty((2, c * kh * kw, oh * ow), node.outputs[0].type.dtype.np)  # one per batch half
        return _Template(node, ins, outs, bufs, _conv_input, [dcols])
    cols, fresh = _conv_cols(node, shared)
    if node.op == "conv2d":
        step = _Template(node, ins, outs, bufs, _conv_forward, [cols])
        epilogue = _epilogue(node)
        if epilogue is not None:
            shared[epilogue[0]] = (step, node.outputs[0]) + epilogue[1:]
        return step
    groups, weight_shape = node.attrs["groups"], node.attrs["weight_shape"]
    acc = np.empty((2, 2, cols.shape[1] // groups, weight_shape[0] // groups), cols.dtype)  # per batch half
    return _Template(node, ins, outs, bufs, _conv_weight, [cols, acc, fresh, np.empty(weight_shape, cols.dtype)])


class _Alias:
    """A fused epilogue absorbed by its conv2d: its output is the conv's (already in place) output."""

    def __init__(self, src, dst):
        self.src, self.dst = src, dst

    def __call__(self, env):
        env[self.dst] = env[self.src]


def _absorb(fused, ins, outs, link):
    """Hand a fused epilogue's bias slot and ReLU to the conv2d step that registered it; the fused step aliases."""
    step, conv_out, bias, relu = link
    step.attrs["epilogue"] = (bias is not None, relu)
    if bias is not None:
        step.ins = step.ins + [ins[fused.inputs.index(bias)]]
    return _Alias(ins[fused.inputs.index(conv_out)], outs[0])


def _max_pool(ins, outs, a, s):
    (x,), geo = ins, (*a["kernel_size"], *_geometry_args(a))
    _split(pool.max_pool2d_forward, x.shape[0], x.size, lambda h, k: (x[h], *geo, outs[0][h], outs[1][h]))


def _max_pool_back(ins, outs, a, s):
    (g, idx), dx = ins, outs[0]
    _split(pool.max_pool2d_backward, g.shape[0], g.size, lambda h, k: (g[h], idx[h], dx[h]))


def _gemm_step(node, ins, outs, bufs, shared):
    return _Matmul(node, ins, outs, bufs)


def _pool_step(call, node_ok=lambda node: True):
    def build(node, ins, outs, bufs, shared):
        return _Template(node, ins, outs, bufs, call) if node_ok(node) else None

    return build


def _log_softmax(ins, outs, a, s):
    x = np.ascontiguousarray(ins[0])
    k = x.shape[-1]
    softmax.log_softmax_rows(x.reshape(-1, k), outs[0].reshape(-1, k))


def _log_softmax_step(node, ins, outs, bufs, shared):
    t = node.inputs[0].type
    last = node.attrs["dim"] % t.ndim == t.ndim - 1
    return _Template(node, ins, outs, bufs, _log_softmax) if last and t.shape[-1] > 0 else None


# OpDef.kernel -> builder(node, ins, outs, bufs, shared) of its library-kernel step (None: not applicable here)
TEMPLATE_STEPS = {
    "gemm": _gemm_step,
    "conv2d": _conv_step,
    "conv2d_weight_grad": _conv_step,
    "conv2d_input_grad": _conv_step,
    "max_pool2d": _pool_step(_max_pool, lambda node: not node.attrs.get("ceil_mode")),
    "max_pool2d_backward": _pool_step(_max_pool_back),
    "log_softmax": _log_softmax_step,
}


def _make_step(node, ins, outs, bufs, shared):
    """The fastest available step for one non-view node: its generated fused kernel, the library kernel its OpDef
    names (float32, 4-d pooling), or its NumPy impl; `shared` is the Program's step_links."""
    if node.op == "fused":
        link = shared.pop(node, None)
        return _Fused(node, ins, outs, bufs) if link is None else _absorb(node, ins, outs, link)
    types = [v.type for v in node.inputs]
    float32 = all(t.dtype.name == "float32" for t in types if t.dtype.is_floating_point)
    pooling = node.opdef.kind == "pool"
    build = TEMPLATE_STEPS.get(node.opdef.kernel)
    step = None
    if build is not None and float32 and (not pooling or len(types[0].shape) == 4):
        step = build(node, ins, outs, bufs, shared)
    return step if step is not None else _Impl(node, ins, outs, bufs)
