"""A compiled CPU Program: the planned graph as an ordered list of kernel calls over one arena of buffers.

Fused groups run their generated Numba kernels; conv/pool/log-softmax run the shared library kernels; matmul runs
BLAS into its planned buffer; views are views (free); any other op runs its NumPy `impl`, copied into place. When
every step has an njit form (the usual case) the whole list is one generated driver function, so a run is one call.
"""
import functools
import time

import numpy as np

from ..codegen import driver
from ..passes.fuse import VIEW_OPS
from .library import LIBRARY_STEPS, absorb, own_threads
from .steps import Const, Fused, Impl


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
                self.steps.append(Const(self._slot(node.outputs[0]), node.attrs["value"]))
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
        self.driver_source = None
        self.driver, self.bound = self._driver()

    def _driver(self):
        """The whole step list as one generated njit function and the fixed arrays it takes, or (None, ()) when
        some step has no njit form (the steps then run from Python)."""
        t0 = time.perf_counter()
        d = driver.Driver(self.inputs)
        try:
            for step in self.steps:
                step.lower(d)
        except driver.NoDriverForm:
            return None, ()
        self.driver_source = d.source(self.outputs, [v for v, _, _ in self.writebacks])
        fn = driver.compile_driver(self.driver_source)
        self.compile_seconds["driver"] = time.perf_counter() - t0
        return fn, tuple(d.bound)

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
            step = Impl(node, ins, outs, None)
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
        if self.driver is not None:
            outputs, wbs = self.driver(*inputs, *self.bound)
            return list(outputs), list(wbs)
        env = [None] * len(self.slots)
        for slot, arr in zip(self.inputs, inputs):
            env[slot] = arr
        for step in self.steps:
            step(env)
        outputs = [env[s] for s in self.outputs]
        wbs = [env[v] for v, _, _ in self.writebacks]
        return outputs, wbs


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def _make_step(node, ins, outs, bufs, shared):
    """The fastest available step for one non-view node: its generated fused kernel, the library kernel its OpDef
    names (float32, 4-d pooling), or its NumPy impl; `shared` is the Program's step_links."""
    if node.op == "fused":
        link = shared.pop(node, None)
        return Fused(node, ins, outs, bufs) if link is None else absorb(node, ins, outs, link)
    types = [v.type for v in node.inputs]
    float32 = all(t.dtype.name == "float32" for t in types if t.dtype.is_floating_point)
    pooling = node.opdef.kind == "pool"
    build = LIBRARY_STEPS.get(node.opdef.kernel)
    step = None
    if build is not None and float32 and (not pooling or len(types[0].shape) == 4):
        step = build(node, ins, outs, bufs, shared)
    return step if step is not None else Impl(node, ins, outs, bufs)
