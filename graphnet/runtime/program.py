"""A compiled CPU Program: the planned graph as an ordered list of kernel calls over one arena of buffers.

Fused groups run their generated Numba kernels; conv/pool/log-softmax run the shared library kernels; matmul runs
BLAS into its planned buffer; views are views (free); any other op runs its NumPy `impl`, copied into place. A
Program whose steps all have an njit form runs as one generated driver function (codegen/driver.py), one call.
"""
import functools
import time

import numpy as np

from ..codegen import cpu, driver
from ..codegen.precompile import precompile
from ..codegen.templates.softmax import KernelIndexError
from ..passes.fuse import VIEW_OPS
from . import steps
from .bounds import InputChecks, raise_eager_error
from .library import LIBRARY_STEPS, MAX_DRIVER_STEPS, MIN_SEGMENT_STEPS, StepLinks, absorb
from .steps import Collective, Const, Fused, Impl


class Program:
    """Built once per graph; `run(inputs)` returns (outputs, write-back arrays) in graph order. `generic`: its
    kernels and driver take sizes as arguments, so a Program of the same graph at another size compiles nothing."""

    def __init__(self, graph, generic=False):
        self.graph, self.generic = graph, generic
        plan = graph.meta.get("plan_memory", {})
        self.arena = np.empty(max(plan.get("arena_bytes", 0), 1), np.uint8)
        self.slots = {}
        self.inputs = [self._slot(v) for v in graph.inputs]
        self.compile_seconds = {}
        self.input_checks = InputChecks(graph)
        self.step_links = StepLinks(graph)
        self.steps, self.step_reads = [], []  # the steps, and the slots each reads
        for node in graph.nodes:
            if node.op in ("input", "output"):
                continue
            self.steps.append(Const(self._slot(node.outputs[0]), node.attrs["value"]) if node.op == "constant"
                              else self._step(node))
            self.step_reads.append([self._slot(v) for v in node.inputs])
        self._load_kernels()
        self.outputs = [self._slot(v) for v in graph.outputs]
        self.single_blas = self.step_links.own_threads
        seen = set()
        self.owned_outputs = [v.index in v.producer.meta.get("fresh", ()) and not (v in seen or seen.add(v))
                              for v in graph.outputs]
        self.writebacks = [(self._slot(wb.value), self._slot(wb.target), wb.kind) for wb in graph.writebacks]
        self.inplace_writebacks = {i for i, wb in enumerate(graph.writebacks)
                                   if wb.target.name in wb.value.producer.meta.get("inplace", {}).values()}
        self.driver_sources = []
        self.parts = self._parts()
        self.driver = self.parts[0] if len(self.parts) == 1 and isinstance(self.parts[0], _Driver) else None

    def _parts(self):
        """The step list as generated driver functions and steps run from Python: every maximal run of steps with
        an njit form becomes one driver (a step without one, an opaque op run on the host, splits the Program
        there); a run of fewer than MIN_SEGMENT_STEPS steps in a split Program stays in Python, its driver's
        compile costing more than the calls it saves. A step that splits its batch over two threads has no njit
        form (Numba threads only in parfors, and a parallel driver measured 21-25 s of cold compile for LeNet's
        training step instead of 10-13 s); training steps never split (library.batch_threads), so a compiled
        training step without host ops is one driver call."""
        if len(self.steps) > MAX_DRIVER_STEPS:
            return list(self.steps)
        views = {slot for step in self.steps if isinstance(step, Impl) and step.bufs is None for slot in step.outs}
        contiguous = set(self.slots.values()) - views
        runs, d = [], driver.Driver(contiguous, self.generic)
        runs.append((d, []))
        for step, reads in zip(self.steps, self.step_reads):
            if d.lower(step):
                runs[-1][1].append((step, reads))
                continue
            contiguous -= d.defined - d.contiguous  # what this driver made a strided view is one for the next
            runs.append((None, [(step, reads)]))
            d = driver.Driver(contiguous, self.generic)
            runs.append((d, []))
        whole = len(runs) == 1
        needed, parts = set(self.outputs) | {v for v, _, _ in self.writebacks}, []
        for d, run in reversed(runs):
            if d is not None and run and (whole or len(run) >= MIN_SEGMENT_STEPS):
                part = _Driver(d, sorted(d.defined & needed), [step for step, _ in run])
                part.compile(self)
                needed |= set(d.reads)
                parts.append(part)
            else:
                for step, reads in reversed(run):
                    needed |= set(reads)
                    parts.append(step)
        parts.reverse()
        self.driver_sources.reverse()
        return parts

    def render_kernel(self, kernel):
        """The source this Program generates for a fused kernel."""
        return (cpu.render_generic if self.generic else cpu.render_sized)(kernel)[0]

    def _load_kernels(self):
        """Compile the fused kernels not cached yet on all cores, then load every one."""
        t0 = time.perf_counter()
        fused = [step for step in self.steps if isinstance(step, steps.Fused)]
        precompile(self.kernel_sources())
        for step in fused:
            step.load()
        self.compile_seconds["fused"] = self.compile_seconds.get("fused", 0.0) + time.perf_counter() - t0

    def kernel_sources(self):
        """The source of every generated kernel the steps call (repeats included)."""
        return [step.source for step in self.steps if isinstance(step, steps.Fused)]

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
            step = _make_step(node, ins, outs, bufs, self.step_links, self.generic)
        self.compile_seconds[node.op] = self.compile_seconds.get(node.op, 0.0) + time.perf_counter() - t0
        return step

    def run(self, inputs):
        if self.single_blas:
            with _blas_controller().limit(limits=1):
                return self._run(inputs)
        return self._run(inputs)

    def _run(self, inputs):
        """The steps over `inputs`, the index inputs checked first: a bad label raises before any kernel runs."""
        self.input_checks(inputs)
        env = [None] * len(self.slots)
        for slot, arr in zip(self.inputs, inputs):
            env[slot] = _c_contiguous(arr)  # drivers and kernels index inputs as C-contiguous
        try:
            for part in self.parts:
                part(env)
        except KernelIndexError:
            raise_eager_error(self.graph, inputs)
        outputs = [env[s] for s in self.outputs]
        wbs = [env[v] for v, _, _ in self.writebacks]
        return outputs, wbs


def _c_contiguous(arr):
    """`arr` itself when C-contiguous and writeable, else a C-contiguous copy: kernels are typed for writeable
    arrays (an empty broadcast gradient is contiguous but read-only), and np.ascontiguousarray would turn a 0-d
    array into a 1-d one, which an output that is an input would then keep."""
    return arr if arr.flags.c_contiguous and arr.flags.writeable else np.array(arr, order="C")


class _Driver:
    """A run of steps compiled into one driver function: it takes the slots it reads from the env and puts
    `exports` (what later parts, the outputs and the write-backs read) back."""

    def __init__(self, d, exports, steps):
        self.driver, self.exports, self.steps = d, exports, steps

    def compile(self, program):
        self.source = self.driver.source(self.exports)
        program.driver_sources.append(self.source)
        self.reads, self.bound, self.fn = self.driver.reads, tuple(self.driver.bound), None
        self.program = program

    def __call__(self, env):
        args = [env[s] for s in self.reads] + list(self.bound)
        if self.fn is None:  # typed (or loaded) at the first call, when the argument types are known
            t0 = time.perf_counter()
            self.fn, self.addresses = driver.compile_driver(self.source, self.driver.sites, args)
            seconds = self.program.compile_seconds
            seconds["driver"] = seconds.get("driver", 0.0) + time.perf_counter() - t0
            if self.fn is None:  # no record of its call sites: its steps run from Python
                parts = self.program.parts
                k = parts.index(self)
                parts[k:k + 1] = self.steps
                if self.program.driver is self:
                    self.program.driver = None
                for step in self.steps:
                    step(env)
                return
        results = self.fn(*args, self.addresses)
        for slot, arr in zip(self.driver.returned, results):
            env[slot] = arr
        for slot, position in self.driver.passed:
            env[slot] = args[position]


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def _make_step(node, ins, outs, bufs, shared, generic):
    """The fastest available step for one non-view node: its generated fused kernel (shape-generic or not), the
    library kernel its OpDef names (float32, 4-d pooling), or its NumPy impl; `shared` is the Program's step_links."""
    if node.opdef.kernel == "collective":  # any dtype MPI takes, not only the float32 of the library kernels
        return Collective(node, ins, outs, bufs)
    if node.op == "fused":
        link = shared.pop(node, None)
        return Fused(node, ins, outs, bufs, generic, serial=shared.own_threads) if link is None else \
            absorb(node, ins, outs, link)
    types = [v.type for v in node.inputs]
    float32 = all(t.dtype.name == "float32" for t in types if t.dtype.is_floating_point)
    pooling = node.opdef.kind == "pool"
    build = LIBRARY_STEPS.get(node.opdef.kernel)
    step = None
    if build is not None and float32 and (not pooling or len(types[0].shape) == 4):
        step = build(node, ins, outs, bufs, shared)
    return step if step is not None else Impl(node, ins, outs, bufs)
