"""A compiled CUDA Program: the optimized graph as an ordered list of device steps over numba device arrays.

Fused groups run their generated LoopKernels (codegen/cuda.py: grid-stride elementwise loops, block-tree
reductions); every other node runs the eager CUDA backend's per-op device code (runtime/cuda_backend.py: GEMM,
conv, pooling, log_softmax, strided copies), so the two modes share one implementation of each op. Constants are
uploaded once at build time; outputs come from the caching allocator per run. An in-place write the memory plan
gives a fused kernel over a graph input (an optimizer update of a parameter) is honoured; other planned buffers
are not used, since the allocator already recycles device blocks.
"""
import time

import numpy as np

from ..codegen import cuda as cg
from ..core.device import device as make_device
from ..core.types import TensorType
from . import cuda_backend, storage
from .bounds import InputChecks
from .cuda_kernels.gemm import gemm_strided
from .library import bias_relu_epilogue

# steps whose output may share a buffer the program does not own (check_targets hands back its input)
_ALIASING = {"input", "constant", "reshape", "check_targets"}


class CudaProgram:
    """Built once per graph on GPU `index`; `run(inputs)` returns (outputs, write-back arrays) in graph order.

    Values the graph types as CPU (PyTorch's CPU 0-d tensors that may join GPU math, e.g. Adam's step count) are
    uploaded as inputs and handed back as host arrays; everything in between runs on the GPU."""

    def __init__(self, graph, index=0):
        self.graph, self.index = graph, index
        self.device = make_device("cuda", index)
        self.slots, self.compile_seconds, self.steps = {}, {}, []
        self.absorbed = {}  # fused epilogue node -> the slot of the GEMM output it post-processed in place
        self.driver_sources = []  # the CPU Program's generated driver functions have no CUDA form: steps run in turn
        self.inputs = [self._slot(v) for v in graph.inputs]
        self.input_checks = InputChecks(graph)
        uploaded = set()  # values whose buffer is an upload-once constant
        self.read_transposed = {n for n in graph.nodes if _transpose_for_gemms(n)}  # no copy: GEMMs read its input
        for node in graph.nodes:
            if node.op in ("input", "output") or node in self.read_transposed:
                continue
            t0 = time.perf_counter()
            self.steps.append(self._step(node, uploaded))
            self.compile_seconds[node.op] = self.compile_seconds.get(node.op, 0.0) + time.perf_counter() - t0
        self.outputs = [self._slot(v) for v in graph.outputs]
        self.owned_outputs = _owned(graph.outputs, uploaded)
        self.writebacks = [(self._slot(wb.value), self._slot(wb.target), wb.kind) for wb in graph.writebacks]
        self.inplace_writebacks = {i for i, wb in enumerate(graph.writebacks)
                                   if wb.target.name in _input_inplace(wb.value.producer).values()}
        self.host_inputs = [i for i, v in enumerate(graph.inputs) if _on_host(v)]
        self.host_outputs = [i for i, v in enumerate(graph.outputs) if _on_host(v)]
        self.host_writebacks = [i for i, wb in enumerate(graph.writebacks) if _on_host(wb.target)]

    def _slot(self, v):
        return self.slots.setdefault(v, len(self.slots))

    def _step(self, node, uploaded):
        """The device step of one node: an upload-once constant, a fused kernel launch, or the eager op."""
        ins = [self._slot(v) for v in node.inputs]
        outs = [self._slot(v) for v in node.outputs]
        if node.op == "constant":
            uploaded.add(node.outputs[0])
            return _Const(outs[0], storage.to_device(node.attrs["value"], self.index))
        if node.op == "to_device" and node.inputs[0].producer.op == "constant" and node.attrs["device"] == self.device:
            uploaded.add(node.outputs[0])
            return _Const(outs[0], storage.to_device(node.inputs[0].producer.attrs["value"], self.index))
        types = [TensorType(tuple(v.type.shape), v.type.dtype, self.device) for v in node.outputs]
        if node.op == "fused":
            src = self.absorbed.pop(node, None)
            return _Fused(node, ins, outs, types, self.index) if src is None else _Alias(src, outs[0])
        if node.op == "matmul" and all(v.type.ndim == 2 for v in node.inputs) and types[0].dtype.is_floating_point:
            return self._gemm(node, ins, outs)
        return _Op(node, ins, outs, types)

    def _gemm(self, node, ins, outs):
        """A 2-d matmul on the tiled GEMM, reading a transposed operand through strides and taking over a fused
        relu?(out + bias) that only post-processes its output."""
        operands = [(self._slot(v.producer.inputs[0]), True) if v.producer in self.read_transposed else (slot, False)
                    for v, slot in zip(node.inputs, ins)]
        m, n = node.outputs[0].type.shape
        link = bias_relu_epilogue(node, -1)
        if link is None:
            return _Gemm(operands, outs[0], (m, n), None, False)
        fused, bias, relu = link
        self.absorbed[fused] = outs[0]
        return _Gemm(operands, outs[0], (m, n), None if bias is None else self._slot(bias), relu)

    def kernel_sources(self):
        """The source of every generated kernel the steps launch (repeats included)."""
        return [step.source for step in self.steps if isinstance(step, _Fused)]

    def render_kernel(self, kernel):
        """The CUDA source of a fused LoopKernel (what compile(...).kernels() shows)."""
        return cg.render(kernel, threads=cg.launch_limits()[0])

    def run(self, inputs):
        """The steps over `inputs`, the index inputs checked first (one small read-back each), so a bad label raises
        before any kernel runs; an index computed on the device is checked by its own kernel's error flag."""
        self.input_checks(inputs, to_host=_host_copy)
        env = [None] * len(self.slots)
        for slot, arr in zip(self.inputs, inputs):
            env[slot] = arr
        for i in self.host_inputs:
            env[self.inputs[i]] = storage.to_device(inputs[i], self.index)
        for step in self.steps:
            step(env)
        outputs, wbs = [env[s] for s in self.outputs], [env[v] for v, _, _ in self.writebacks]
        for arrays, host in ((outputs, self.host_outputs), (wbs, self.host_writebacks)):
            for i in host:
                arrays[i] = storage.to_host(arrays[i]) if is_device_array(arrays[i]) else arrays[i]
        return outputs, wbs


def _host_copy(arr):
    return storage.to_host(arr) if is_device_array(arr) else np.asarray(arr)


def _on_host(v):
    return v.type.device.type == "cpu"


def _input_inplace(node):
    """{output index: graph-input name} of the planned in-place writes over GPU graph inputs (the only ones kept)."""
    by_name = {v.name: v for v in node.inputs}
    return {i: name for i, name in node.meta.get("inplace", {}).items()
            if name in by_name and by_name[name].producer.op == "input" and not _on_host(by_name[name])}


def _owned(outputs, uploaded):
    """Per output: whether the run allocated it freshly for the caller (else the caller must copy it)."""
    seen, owned = set(), []
    for v in outputs:
        p = v.producer
        fresh = p.op not in _ALIASING and v not in uploaded and v.index not in _input_inplace(p) and v not in seen
        owned.append(fresh)
        seen.add(v)
    return owned


class _Const:
    def __init__(self, slot, value):
        self.slot, self.value = slot, value

    def __call__(self, env):
        env[self.slot] = self.value


class _Op:
    """A non-fused node through the eager CUDA backend's device code (or its counted host fallback)."""

    def __init__(self, node, ins, outs, types):
        self.opdef, self.attrs, self.ins, self.outs, self.types = node.opdef, dict(node.attrs), ins, outs, types
        self.handler = cuda_backend._handler(node.opdef)

    def __call__(self, env):
        arrays = [env[i] for i in self.ins]
        if self.handler is not None:
            results = self.handler(arrays, self.attrs, self.types)
        else:
            results = cuda_backend._fallback(self.opdef, arrays, self.attrs, self.types)
        for slot, arr, typ in zip(self.outs, results, self.types):
            if tuple(arr.shape) != tuple(typ.shape):
                raise RuntimeError(f"{self.opdef.name}: internal error, CUDA kernel gave shape {tuple(arr.shape)} "
                                   f"but the graph says {typ.shape}")
            env[slot] = arr


class _Gemm:
    """relu?(op(a) @ op(b) + bias) on the tiled shared-memory GEMM, op(x) = x.T read through strides where the graph
    transposed an operand, the epilogue applied as each tile is stored."""

    def __init__(self, operands, out, shape, bias, relu):
        (self.a, ta), (self.b, tb) = operands
        self.out, self.shape, self.bias, self.relu = out, shape, bias, relu
        self.transposed = (ta, tb)

    def __call__(self, env):
        (m, n), (ta, tb) = self.shape, self.transposed
        a, b = env[self.a], env[self.b]
        k = a.shape[0] if ta else a.shape[1]
        out = storage.empty((m, n), a.dtype)
        bias = None if self.bias is None else storage.flat(env[self.bias])
        gemm_strided(storage.flat(a), storage.flat(b), storage.flat(out), m, n, k, (1, 1),
                     (0, 0, 1, m) if ta else (0, 0, k, 1), (0, 0, 1, k) if tb else (0, 0, n, 1),
                     bias=bias, bias_mode=int(bias is not None), relu=self.relu)
        env[self.out] = out


def _transpose_for_gemms(node):
    """A 2-d transpose read only by 2-d floating matmuls (a Linear's weight): they read its input through strides."""
    return (node.op == "permute" and tuple(node.attrs["dims"]) == (1, 0) and bool(node.outputs[0].users)
            and all(u.op == "matmul" and all(v.type.ndim == 2 for v in u.inputs)
                    and u.outputs[0].type.dtype.is_floating_point for u in node.outputs[0].users))


class _Alias:
    """A fused epilogue the GEMM applied: its output is the GEMM's."""

    def __init__(self, src, dst):
        self.src, self.dst = src, dst

    def __call__(self, env):
        env[self.dst] = env[self.src]


class _Fused:
    """A generated LoopKernel over flat contiguous device buffers (strides baked in), launched on its own grid."""

    def __init__(self, node, ins, outs, types, index):
        kernel = node.attrs["kernel"]
        threads, max_blocks = cg.launch_limits()
        self.ins, self.outs, self.types, self.index = ins, outs, types, index
        inplace = _input_inplace(node)
        names = [v.name for v in node.inputs]
        self.targets = [ins[names.index(inplace[i])] if i in inplace else None for i in range(len(outs))]
        work, self.parts = max(_numel(m.domain) for m in kernel.members), 1
        if kernel.is_reduction:
            nout = types[0].numel
            threads = _block_size(work // max(nout, 1), threads)
            self.parts = _parts(nout, work // max(nout, 1), threads, max_blocks)
            self.grid = (min(nout * self.parts, max_blocks), threads) if nout else None
            if self.parts > 1:
                self.combine = cg.load(cg.render_partials(kernel, self.parts))
        else:
            self.grid = cg.grid_for(work) if work else None
        self.source = cg.render(kernel, threads=threads, parts=self.parts)
        self.fn = cg.load(self.source)

    def __call__(self, env):
        dsts = [storage.empty(t.shape, t.dtype.np, self.index) if target is None else env[target]
                for t, target in zip(self.types, self.targets)]
        if self.grid is not None:
            ins = [storage.flat(env[i]) for i in self.ins]
            if self.parts > 1:  # two passes: partials per (output, slice), then their combination
                partials = storage.empty((self.types[0].numel * self.parts,), self.types[0].dtype.np, self.index)
                self.fn[self.grid](*ins, partials)
                self.combine[cg.grid_for(self.types[0].numel)](partials, storage.flat(dsts[0]))
            else:
                self.fn[self.grid](*ins, *(storage.flat(d) for d in dsts))
        for slot, d in zip(self.outs, dsts):
            env[slot] = d


def _parts(nout, nred, threads, max_blocks):
    """Slices per output of a reduction: enough blocks to fill the device when there are few outputs, each block
    still reducing at least 8 elements per thread; 1 (a block per output) otherwise."""
    if nout * 2 > max_blocks:
        return 1
    return max(1, min(max_blocks // max(nout, 1), nred // (threads * 8)))


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _block_size(nred, limit):
    """Threads per block of a tree reduction over `nred` elements: the power of two covering it, at most `limit`
    (a short reduction gets a small block instead of idle threads waiting at every barrier)."""
    threads = 1
    while threads < min(nred, limit):
        threads *= 2
    return threads


# ---- device-aware array helpers for compile.py (host arrays keep their NumPy behaviour) --------------------------
def is_device_array(arr):
    return not isinstance(arr, np.ndarray) and hasattr(arr, "copy_to_host")


def device_copy(arr):
    """A fresh contiguous device copy of a device array (a 'copy' kernel launch)."""
    return cuda_backend._copy_view(arr, lambda v: v)


def device_copyto(dst, src):
    """dst[...] = src for two device arrays of one shape."""
    cuda_backend._write_into(dst, lambda v: v, src)


def device_zeros(shape, dtype, index=0):
    return cuda_backend._fill(storage.empty(shape, dtype, index), 0)
