"""graphnet.compile: trace once per guard set, optimize with the pass pipeline, run a compiled Program.

compile(fn)     the whole call (e.g. a training step: forward, loss, backward, optimizer update) is one Program;
                parameters, gradients and optimizer state are updated in place (write-backs). The first call of
                a guard set runs eagerly, so lazily created state (momentum buffers) exists before tracing.
compile(model)  forward is a Program; when gradients are needed the joint graph is split ahead of time and
                `loss.backward()` runs the compiled backward Program through one autograd node.
"""
import time
import warnings

import numpy as np

from .autograd import Node, gradient_edge, is_grad_enabled, no_grad
from .tensor import Tensor
from .tracer import GraphBreak, _flatten, _unflatten, trace

RECOMPILE_WARN_AT = 8


class UnsupportedError(RuntimeError):
    """graphnet.compile cannot build this program (e.g. inputs on two devices); the call runs eagerly, warned once."""


def compile(model=None, *, fullgraph=False, dynamic=False, backend="numba", mode=None):  # noqa: A001
    """Compile a function or an nn.Module (usable as a decorator, with or without arguments)."""
    if model is None:
        return lambda m: compile(m, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode)
    if dynamic:
        raise NotImplementedError("graphnet.compile(dynamic=True): only static shapes are supported; a new shape "
                                  "recompiles (dynamic=False)")
    if hasattr(model, "named_parameters") and hasattr(model, "forward"):
        return CompiledModule(model, fullgraph)
    return CompiledFunction(model, fullgraph)


def optimize(graph):
    """The default pass pipeline (passes.pipeline) and the report of each pass."""
    from ..passes import pipeline

    return pipeline.run_pipeline(graph)


def _guard_key(args, extra=()):
    leaves = []
    _flatten(args, leaves)
    key = tuple((tuple(t.shape), t.dtype.name, str(t.device), t.requires_grad) if isinstance(t, Tensor) else
                ("py", repr(t)) for t in leaves)
    return key + (is_grad_enabled(),) + tuple(extra)


class _Compiled:
    """Shared machinery: the cache of entries per guard key, fallback, recompile warnings, introspection."""

    def __init__(self, fn, fullgraph):
        self.fn, self.fullgraph = fn, fullgraph
        self._entries, self._seen, self._warned = {}, set(), set()
        self._last = None

    def _entry(self, key, build):
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) == RECOMPILE_WARN_AT:
                warnings.warn(f"graphnet.compile: {getattr(self.fn, '__name__', self.fn)} was recompiled "
                              f"{RECOMPILE_WARN_AT} times (new shapes, dtypes, devices or requires_grad flags); "
                              "each variant is traced and compiled again", stacklevel=3)
            try:
                entry = build()
            except (GraphBreak, UnsupportedError) as e:
                if self.fullgraph:
                    raise
                if str(e) not in self._warned:
                    self._warned.add(str(e))
                    warnings.warn(f"graphnet.compile: falling back to eager: {e}", stacklevel=3)
                entry = None
            self._entries[key] = entry
        self._last = entry
        return entry

    def graph(self, stage="optimized"):
        """The last compiled graph at `stage`: 'traced', 'joint' (modules under grad), or 'optimized'."""
        if self._last is None:
            raise RuntimeError("graph(): nothing compiled yet — call the compiled object first")
        graphs = self._last.graphs
        if stage not in graphs:
            raise ValueError(f"graph(stage={stage!r}): available stages are {sorted(graphs)}")
        return graphs[stage]

    def kernels(self):
        """{kernel name: generated source} of the last compiled entry, each Program's driver included."""
        from ..codegen import cpu

        out = {}
        for prog in self._last.programs:
            for i, source in enumerate(prog.driver_sources):
                out[f"{prog.graph.meta.get('name', 'program')}.driver{i}"] = source
            for node in prog.graph.nodes:
                if node.op == "fused":
                    out[f"{prog.graph.meta.get('name', 'program')}.{node.outputs[0].name}"] = getattr(
                        prog, "render_kernel", cpu.render)(node.attrs["kernel"])
        return out

    def stats(self):
        """Kernel counts, fusion groups, planned memory and compile times of the last compiled entry."""
        if self._last is None:
            return {}
        progs = self._last.programs
        return {"programs": len(progs), "kernels": sum(len(p.steps) for p in progs),
                "fused_groups": sum(p.graph.meta.get("fuse", {}).get("groups", 0) for p in progs),
                "planned_peak_bytes": sum(p.graph.meta.get("plan_memory", {}).get("peak_bytes_after", 0)
                                          for p in progs),
                "compile_seconds": self._last.compile_seconds, "passes": self._last.pass_reports,
                "variants": len(self._entries)}


class _Entry:
    """One compiled variant: its Programs, the traced state it binds, and timings."""

    def __init__(self, traced, graphs, programs, compile_seconds, pass_reports):
        self.traced, self.graphs, self.programs = traced, graphs, programs
        self.compile_seconds, self.pass_reports = compile_seconds, pass_reports


def _program_class(graph, name):
    """Program (CPU inputs) or CudaProgram (inputs on one GPU, plus CPU 0-d scalars as PyTorch allows); inputs on
    several devices stay eager."""
    devices = {v.type.device for v in graph.inputs if v.type.device.type != "cpu" or v.type.ndim}
    if len(devices) > 1:
        raise UnsupportedError(f"this {name} has inputs on several devices ({', '.join(sorted(map(str, devices)))}); "
                               "a compiled program runs on one device, so it runs eagerly. Move every tensor "
                               "(inputs, parameters, optimizer state) to one device to compile it")
    dev = next(iter(devices), None)
    if dev is None or dev.type == "cpu":
        from ..runtime.program import Program

        return Program
    from ..runtime.cuda_program import CudaProgram

    return lambda g: CudaProgram(g, dev.index or 0)


def _build_program(graph, name):
    make = _program_class(graph, name)
    t0 = time.perf_counter()
    optimized, report = optimize(graph)
    optimized.meta["name"] = name
    t1 = time.perf_counter()
    prog = make(optimized)
    return prog, optimized, report, {"passes": t1 - t0, "codegen": time.perf_counter() - t1}


def _arrays(tensors):
    return [_contiguous(t._data) for t in tensors]


def _contiguous(arr):
    """A C-contiguous array of `arr`'s values: NumPy's, or a device array as is (graphnet's are contiguous)."""
    return np.ascontiguousarray(arr) if isinstance(arr, np.ndarray) else arr


def _copy(arr):
    """A fresh copy of a host or device array."""
    if isinstance(arr, np.ndarray):
        return np.array(arr)
    from ..runtime.cuda_program import device_copy

    return device_copy(arr)


def _copyto(dst, src):
    if isinstance(dst, np.ndarray):
        np.copyto(dst, src)
        return
    from ..runtime.cuda_program import device_copyto

    device_copyto(dst, src)


def _zeros(typ):
    if typ.device.type == "cpu":
        return np.zeros(typ.shape, typ.dtype.np)
    from ..runtime.cuda_program import device_zeros

    return device_zeros(typ.shape, typ.dtype.np, typ.device.index or 0)


def _apply_writebacks(prog, wbs, feeds):
    """Data write-backs land in the live tensors (unless the kernel already wrote in place); grads become .grad."""
    for i, ((_, target_slot, kind), arr) in enumerate(zip(prog.writebacks, wbs)):
        t = feeds[prog.inputs.index(target_slot)]
        if kind == "grad":
            t.grad = Tensor._wrap(_copy(arr), t.dtype, t.device)
        elif i not in prog.inplace_writebacks:
            with no_grad():
                _copyto(t._data, arr)
        t._version[0] += 1 if kind == "data" else 0


class CompiledFunction(_Compiled):
    """compile(fn): each call runs one Program; outputs are new tensors, state is updated in place."""

    def __call__(self, *args):
        key = _guard_key(args)
        if key not in self._seen:
            self._seen.add(key)
            return self.fn(*args)
        entry = self._entry(key, lambda: self._build(args))
        if entry is None:
            return self.fn(*args)
        return self._run(entry, args)

    def _build(self, args):
        t0 = time.perf_counter()
        traced = trace(self.fn, *args)
        prog, optimized, report, secs = _build_program(traced.graph, "step")
        secs["trace"] = time.perf_counter() - t0 - secs["passes"] - secs["codegen"]
        return _Entry(traced, {"traced": traced.graph, "optimized": optimized}, [prog], secs, report)

    def _run(self, entry, args):
        traced, prog = entry.traced, entry.programs[0]
        user = iter([a for a in _leaves(args) if isinstance(a, Tensor)])
        if not hasattr(entry, "feed_plan"):  # per Program input: (is it a user input, the live state tensor)
            state = traced.state
            entry.feed_plan = [(v.role == "input", state.get(v.name)) for v in prog.graph.inputs]
        feeds = [next(user) if is_user else tensor for is_user, tensor in entry.feed_plan]
        outs, wbs = prog.run(_arrays(feeds))
        _apply_writebacks(prog, wbs, feeds)
        return _unflatten(traced._out_spec, iter(_output_tensors(prog, outs)))


def _output_tensors(prog, arrays):
    """Tensors for a Program's outputs: arrays it wrote freshly are handed over, anything else is copied."""
    return [Tensor._wrap(a if owned else _copy(a), v.dtype, v.type.device)
            for a, v, owned in zip(arrays, prog.graph.outputs, prog.owned_outputs)]


def _leaves(args):
    out = []
    _flatten(args, out)
    return out


class CompiledModule(_Compiled):
    """compile(model): shares the model's parameters; forward (and backward, when needed) run compiled."""

    def __init__(self, model, fullgraph):
        super().__init__(model, fullgraph)
        self.model = model

    def __getattr__(self, name):
        if name in ("model", "fn", "fullgraph") or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def __call__(self, *args):
        training = tuple(m.training for m in self.model.modules())
        needs_grad = is_grad_enabled() and (any(p.requires_grad for p in self.model.parameters()) or any(
            isinstance(a, Tensor) and a.requires_grad for a in _leaves(args)))
        key = _guard_key(args, training + (needs_grad,))
        entry = self._entry(key, lambda: self._build(args, needs_grad))
        if entry is None:
            return self.model(*args)
        return self._run(entry, args, needs_grad)

    def _build(self, args, needs_grad):
        from ..passes import autodiff, prune_grads, split

        t0 = time.perf_counter()
        with no_grad():
            traced = trace(self.model, *args)
        graphs = {"traced": traced.graph}
        if not needs_grad:
            prog, optimized, report, secs = _build_program(traced.graph, "forward")
            graphs["optimized"] = optimized
            return _Entry(traced, graphs, [prog], secs, report)
        differentiable = [v for v in traced.graph.inputs if v.dtype.is_floating_point and v.role != "buffer"]
        wrt = [v for v in differentiable if self._requires_grad(traced, v, args)]
        joint = prune_grads(autodiff(traced.graph, wrt=differentiable), requested=[v.name for v in wrt])
        fwd, bwd = split(joint)
        graphs["joint"] = joint
        fprog, fopt, frep, fsecs = _build_program(fwd, "forward")
        bprog, bopt, brep, bsecs = _build_program(bwd, "backward")
        graphs.update(optimized=fopt, backward=bopt)
        secs = {k: fsecs[k] + bsecs[k] for k in fsecs}
        secs["trace+autodiff"] = time.perf_counter() - t0 - secs["passes"] - secs["codegen"]
        entry = _Entry(traced, graphs, [fprog, bprog], secs,
                       {"prune_grads": joint.meta["prune_grads"], "forward": frep, "backward": brep})
        entry.wrt = [v.name for v in wrt]
        return entry

    @staticmethod
    def _requires_grad(traced, v, args):
        if v.role == "input":
            user = [a for a in _leaves(args) if isinstance(a, Tensor)]
            names = [x.name for x in traced.graph.inputs_by_role("input")]
            return user[names.index(v.name)].requires_grad
        t = traced.state.get(v.name)
        return t is not None and t.requires_grad and t.dtype.is_floating_point

    def _feeds(self, entry, args):
        user = [a for a in _leaves(args) if isinstance(a, Tensor)]
        state = entry.traced.state
        return [user.pop(0) if v.role == "input" else state[v.name] for v in entry.programs[0].graph.inputs]

    def _run(self, entry, args, needs_grad):
        fprog = entry.programs[0]
        feeds = self._feeds(entry, args)
        outs, wbs = fprog.run(_arrays(feeds))
        _apply_writebacks(fprog, wbs, feeds)
        n_out = len(entry.traced.graph.outputs)
        tensors = _output_tensors(fprog, outs)[:n_out]
        if needs_grad:
            by_name = dict(zip((v.name for v in fprog.graph.inputs), feeds))
            saved = [a if owned else _copy(a) for a, owned in zip(outs[n_out:], fprog.owned_outputs[n_out:])]
            node = CompiledBackward(entry, [by_name[n] for n in entry.wrt], saved, tensors)
            for j, t in enumerate(tensors):
                if t.dtype.is_floating_point:
                    t.requires_grad_from(node, j)
        return _unflatten(entry.traced._out_spec, iter(tensors))


class CompiledBackward(Node):
    """The autograd node of a compiled forward: its backward is the compiled backward Program."""

    __slots__ = ("entry", "saved", "out_types", "_freed", "_out_hooks")

    def __init__(self, entry, inputs, saved, outputs):
        super().__init__()
        self.entry, self.saved, self._freed, self._out_hooks = entry, saved, False, None
        self.out_types = [t._type() for t in outputs]
        self.next_functions = tuple(gradient_edge(t) for t in inputs)

    def name(self):
        return "CompiledFunctionBackward"

    def apply(self, grad_outputs):
        if self._freed:
            raise RuntimeError("Trying to backward through the graph a second time in CompiledFunctionBackward; "
                               "specify retain_graph=True")
        bprog = self.entry.programs[1]
        by_name = {}
        saved_names = bprog.graph.meta["saved"]
        by_name.update(zip(saved_names, self.saved))
        grad_inputs = [v for v in bprog.graph.inputs if v.role == "grad_output"]
        for v, g in zip(grad_inputs, grad_outputs):
            by_name[v.name] = _contiguous(g._data) if g is not None else _zeros(v.type)
        outs, _ = bprog.run([by_name[v.name] for v in bprog.graph.inputs])
        grads = bprog.graph.meta["grads"]
        types = {v.name: v.type for v in self.entry.programs[0].graph.inputs}
        return tuple(Tensor._wrap(_copy(outs[grads[name]]), types[name].dtype, types[name].device)
                     for name in self.entry.wrt)

    def release(self):
        self.saved, self._freed = [], True
