"""A compiled CPU Program: the planned graph as an ordered list of kernel calls over one arena of buffers.

Fused groups run their generated Numba kernels; conv/pool run the shared library kernels; matmul runs BLAS into
its planned buffer; views are NumPy views (free); any other op runs its NumPy `impl` and is copied into place.
"""
import time

import numpy as np

from ..codegen import cpu
from ..codegen.templates import conv, pool
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
        self.steps = []
        for node in graph.nodes:
            if node.op == "constant":
                self.steps.append(_Const(self._slot(node.outputs[0]), node.attrs["value"]))
            elif node.op not in ("input", "output"):
                self.steps.append(self._step(node))
        self.outputs = [self._slot(v) for v in graph.outputs]
        self.writebacks = [(self._slot(wb.value), self._slot(wb.target), wb.kind) for wb in graph.writebacks]
        self.inplace_writebacks = {i for i, wb in enumerate(graph.writebacks)
                                   if wb.target.name in wb.value.producer.meta.get("inplace", {}).values()}

    def _slot(self, v):
        return self.slots.setdefault(v, len(self.slots))

    def _buffer(self, node, index, env_inputs):
        """The array a node writes its output `index` into: its arena block, or the input it overwrites."""
        v = node.outputs[index]
        inplace = node.meta.get("inplace", {}).get(index)
        if inplace is not None:
            return ("input", next(self._slot(x) for x in node.inputs if x.name == inplace))
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
            bufs = [self._buffer(node, i, ins) for i in range(len(node.outputs))]
            step = _make_step(node, ins, outs, bufs)
        self.compile_seconds[node.op] = self.compile_seconds.get(node.op, 0.0) + time.perf_counter() - t0
        return step

    def run(self, inputs):
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
    return env[ref] if kind == "input" else ref


class _Fused:
    def __init__(self, node, ins, outs, bufs):
        self.fn = cpu.load(cpu.render(node.attrs["kernel"]))
        self.ins, self.outs, self.bufs = ins, outs, bufs

    def __call__(self, env):
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
    """conv/pool library kernels: `call(env_arrays, dst_arrays, attrs, scratch)`."""

    def __init__(self, node, ins, outs, bufs, call, scratch=()):
        self.ins, self.outs, self.bufs, self.call = ins, outs, bufs, call
        self.attrs = dict(node.attrs)
        self.scratch = [np.empty(shape, np.float32 if dt is None else dt) for shape, dt in scratch]

    def __call__(self, env):
        dsts = [_resolve(b, env) for b in self.bufs]
        self.call([env[i] for i in self.ins], dsts, self.attrs, self.scratch)
        for slot, d in zip(self.outs, dsts):
            env[slot] = d


def _conv_scratch(node, x_shape, out_shape):
    n, c, _, _ = x_shape
    o, cg, kh, kw = node.inputs[1].type.shape if node.op != "conv2d_weight_grad" else node.attrs["weight_shape"]
    cols = (c * kh * kw, n * out_shape[2] * out_shape[3])
    return [(cols, node.outputs[0].type.dtype.np), ((o, cols[1]), node.outputs[0].type.dtype.np)]


_NO_BIAS = np.zeros(1, np.float32)


def _conv_forward(ins, outs, a, s):
    x, w = ins
    conv.conv2d_forward(x, w, _NO_BIAS, False, False, *a["stride"], *a["padding"], *a["dilation"], a["groups"],
                        s[0], s[1], outs[0])


def _conv_weight(ins, outs, a, s):
    x, g = ins
    kh, kw = a["weight_shape"][2:]
    conv.im2col(x, kh, kw, *a["stride"], *a["padding"], *a["dilation"], s[0])
    conv.conv2d_weight_grad(np.ascontiguousarray(g), s[0], a["groups"], s[1], outs[0])


def _conv_input(ins, outs, a, s):
    g, w = ins
    conv.conv2d_input_grad(np.ascontiguousarray(g), w, *a["stride"], *a["padding"], *a["dilation"], a["groups"],
                           s[1], s[0], outs[0])


def _max_pool(ins, outs, a, s):
    pool.max_pool2d_forward(ins[0], *a["kernel_size"], *a["stride"], *a["padding"], *a["dilation"], outs[0], outs[1])


def _max_pool_back(ins, outs, a, s):
    pool.max_pool2d_backward(np.ascontiguousarray(ins[0]), ins[1], outs[0])


def _make_step(node, ins, outs, bufs):
    """Pick the fastest available implementation for one non-view node."""
    types = [v.type for v in node.inputs]
    four_d = all(len(t.shape) == 4 for t in types[:1])
    float32 = all(t.dtype.name == "float32" for t in types if t.dtype.is_floating_point)
    if node.op == "fused":
        return _Fused(node, ins, outs, bufs)
    if node.op == "matmul" and float32:
        return _Matmul(node, ins, outs, bufs)
    if node.op == "conv2d" and float32:
        return _Template(node, ins, outs, bufs, _conv_forward,
                         _conv_scratch(node, types[0].shape, node.outputs[0].type.shape))
    if node.op == "conv2d_weight_grad" and float32:
        return _Template(node, ins, outs, bufs, _conv_weight, _conv_scratch(node, types[0].shape, types[1].shape))
    if node.op == "conv2d_input_grad" and float32:
        return _Template(node, ins, outs, bufs, _conv_input,
                         _conv_scratch(node, node.attrs["input_shape"], types[0].shape))
    if node.op == "max_pool2d" and float32 and four_d and not node.attrs.get("ceil_mode"):
        return _Template(node, ins, outs, bufs, _max_pool)
    if node.op == "max_pool2d_backward" and float32 and four_d:
        return _Template(node, ins, outs, bufs, _max_pool_back)
    return _Impl(node, ins, outs, bufs)
