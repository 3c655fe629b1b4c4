"""graphnet.compile: trace once per guard set, optimize with the pass pipeline, run a compiled Program.

compile(fn)     the whole call (e.g. a training step: forward, loss, backward, optimizer update) is one Program;
                parameters, gradients and optimizer state are updated in place (write-backs). The first call of
                a guard set runs eagerly, so lazily created state (momentum buffers) exists before tracing.
compile(model)  forward is a Program; when gradients are needed the joint graph is split ahead of time and
                `loss.backward()` runs the compiled backward Program through one autograd node.
"""
import contextlib
import gc
import time
import warnings
from collections import OrderedDict

import numpy as np

from ..core.device import device as Device
from ..core.dtype import DType
from .autograd import Node, gradient_edge, is_grad_enabled, no_grad
from .guards import Guard, module_refs
from .tensor import Tensor
from .tracer import GraphBreak, _flatten, _unflatten, trace

CACHE_SIZE_LIMIT = 8  # compiled variants kept per compiled object (torch._dynamo.config.cache_size_limit)
GENERIC_ARENA_BYTES = 1 << 30  # planned memory the sizes of one shape-generic family may hold together


def _arena_bytes(variant):
    return sum(getattr(getattr(p, "arena", None), "nbytes", 0) for p in variant.programs or ())


class UnsupportedError(RuntimeError):
    """graphnet.compile cannot build this program (e.g. inputs on two devices); the call runs eagerly, warned once."""


def compile(model=None, *, fullgraph=False, dynamic=None, backend="numba", mode=None, options=None,  # noqa: A001
            disable=False, cache_size_limit=CACHE_SIZE_LIMIT):
    """Compile a function or an nn.Module (usable as a decorator, with or without arguments).

    dynamic=None makes a dimension shape-generic once it has been seen with two sizes; True from the start; False
    never (every new shape is its own variant). At most `cache_size_limit` variants are kept (least recently used
    evicted, with a warning naming the guard that keeps failing)."""
    if model is None:
        return lambda m: compile(m, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                 options=options, disable=disable, cache_size_limit=cache_size_limit)
    if dynamic not in (None, True, False):
        raise TypeError(f"compile(): dynamic must be None, True or False, not {dynamic!r}")
    if not isinstance(cache_size_limit, int) or cache_size_limit < 1:
        raise ValueError(f"compile(): cache_size_limit must be a positive int, not {cache_size_limit!r}")
    if disable:
        return model
    cls = CompiledModule if hasattr(model, "named_parameters") and hasattr(model, "forward") else CompiledFunction
    return cls(model, fullgraph, dynamic, cache_size_limit)


def optimize(graph):
    """The default pass pipeline (passes.pipeline) and the report of each pass."""
    from ..passes import pipeline

    return pipeline.run_pipeline(graph)


_VALUE_TYPES = (bool, int, str, bytes, complex, type(None), type(Ellipsis), DType, Device)


def _arg_key(obj, refs):
    """The guard key of one argument: tensors by shape/dtype/device/requires_grad, containers by their items, plain
    values (numbers, strings, None, dtypes, devices) by value, any other object by identity (kept alive in `refs`)."""
    if isinstance(obj, Tensor):
        return (tuple(obj.shape), obj.dtype.name, str(obj.device), obj.requires_grad)
    if isinstance(obj, (tuple, list)):
        return (type(obj), tuple(_arg_key(o, refs) for o in obj))
    if isinstance(obj, dict):
        return (dict, tuple((k, _arg_key(v, refs)) for k, v in obj.items()))
    if isinstance(obj, float):
        return ("float", repr(obj))  # repr: -0.0 and nan are values too
    if isinstance(obj, slice):
        return ("slice", _arg_key((obj.start, obj.stop, obj.step), refs))
    if isinstance(obj, _VALUE_TYPES):
        return (type(obj), obj)
    refs.append(obj)
    return ("id", id(obj))


def _guard_key(args, refs, extra=()):
    return tuple(_arg_key(a, refs) for a in args) + (is_grad_enabled(),) + tuple(extra)


def _shape_free(key):
    """`key` with every tensor's sizes replaced by its rank: keys equal here differ only in sizes."""
    if isinstance(key, tuple) and len(key) == 4 and isinstance(key[0], tuple) and isinstance(key[1], str) \
            and all(isinstance(n, int) for n in key[0]):
        return (len(key[0]),) + key[1:]
    if isinstance(key, tuple):
        return tuple(_shape_free(k) for k in key)
    return key


def _describe_change(names, old, new):
    """Which argument of `new` differs from `old` (the guard that failed), in words."""
    for i, (a, b) in enumerate(zip(old, new)):
        if a != b:
            what = names[i] if i < len(names) else "grad mode" if i == len(names) else "module flags"
            return f"{what} changed from {_show(a)} to {_show(b)}"
    return "the arguments changed"


def _show(k):
    if isinstance(k, tuple) and len(k) == 4 and isinstance(k[1], str) and isinstance(k[0], tuple):
        return f"tensor(shape={list(k[0])}, dtype={k[1]}, device={k[2]}, requires_grad={k[3]})"
    if isinstance(k, tuple) and len(k) == 2 and k[0] == "float":
        return k[1]
    if isinstance(k, tuple) and len(k) == 2 and isinstance(k[0], type) and k[0] not in (tuple, list, dict):
        return repr(k[1])
    return repr(k)


@contextlib.contextmanager
def _gc_paused():
    """Python's cycle collector off while a variant is built: tracing and each pass allocate tens of thousands of
    linked graph objects, and the collector's passes over them cost a third of a warm build (ResNet-20: trace 0.6 ->
    0.3 s). Whatever cycles the build leaves are collected once it is back on."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Variant:
    """One compiled variant: its guard key, the Guard over what the trace read, its Programs (None: runs eagerly
    because it cannot be captured), the traced state it binds, and timings."""

    def __init__(self, key, refs, traced=None, graphs=None, programs=None, compile_seconds=None, pass_reports=None):
        self.key, self.refs, self.traced, self.graphs, self.programs = key, refs, traced, graphs, programs
        self.compile_seconds, self.pass_reports = compile_seconds, pass_reports
        self.guard = None

    def release(self):
        """Drop the Programs (their arenas and kernels' buffers) of an evicted variant."""
        for prog in self.programs or ():
            release = getattr(prog, "release", None)
            if release is not None:
                release()
        self.programs, self.traced, self.graphs, self.refs = None, None, None, None


class _Compiled:
    """Shared machinery: the LRU cache of guarded variants, eager first calls, fallback, warnings, introspection."""

    def __init__(self, fn, fullgraph, dynamic=None, cache_size_limit=CACHE_SIZE_LIMIT):
        self.fn, self.fullgraph, self.dynamic, self.cache_size_limit = fn, fullgraph, dynamic, cache_size_limit
        self._variants = OrderedDict()  # key -> [variant, ...] (several when module flags etc. differ), LRU order
        self._warm = OrderedDict()      # keys whose last miss ran eagerly: the next miss compiles
        self._sizes = {}                # shape-free key -> set of keys seen (a dim with two sizes goes dynamic)
        self._warned = set()
        self._last = None

    def _names(self):
        from .tracer import _arg_names

        return _arg_names(getattr(self.fn, "forward", self.fn), 64)

    # ---- the cache -------------------------------------------------------------------------------------------------
    def _lookup(self, key):
        """The variant for `key` whose guards hold now (most recently used first), or None."""
        variants = self._variants.get(key)
        if variants:
            for v in variants:
                if v.guard is None or v.guard.check():
                    self._variants.move_to_end(key)
                    self._last = v
                    return v
        return None

    def _miss(self, key):
        """True when this miss should compile; the first miss of a key (or after a guard failed) runs eagerly,
        so lazily created state (optimizer moments, lazy modules) exists before tracing. A new size of arguments
        compiled before at another size, all else unchanged, compiles at once: its state exists, and a shape-generic
        build is cheap."""
        if self._warm.pop(key, None) is not None or (self.dynamic is not False and self._other_size_holds(key)):
            return True
        self._warm[key] = True
        while len(self._warm) > 4 * self.cache_size_limit:
            self._warm.popitem(last=False)
        return False

    def _other_size_holds(self, key):
        """Whether a compiled variant that differs from `key` only in sizes has guards that hold now."""
        family = _shape_free(key)
        return any(v.guard is not None and v.guard.check() for k, vs in self._variants.items()
                   if _shape_free(k) == family for v in vs)

    def _shape_generic(self, key):
        """Whether `key`'s variant is built shape-generic: dynamic=True, or (None) another size was seen before."""
        if self.dynamic is not None:
            return self.dynamic
        seen = self._sizes.setdefault(_shape_free(key), set())
        seen.add(key)
        return len(seen) > 1

    def _add(self, key, refs, build):
        """Build (or mark as eager) the variant for `key`, evicting the least recently used beyond the limit."""
        generic = self._shape_generic(key)
        try:
            with _gc_paused():
                variant = build(generic)
        except (GraphBreak, UnsupportedError) as e:
            if self.fullgraph:
                raise
            if str(e) not in self._warned:
                self._warned.add(str(e))
                warnings.warn(f"graphnet.compile: falling back to eager: {e}", stacklevel=4)
            variant = _Variant(key, refs)
        variant.key, variant.refs = key, refs
        variant.generic = bool(variant.programs) and all(getattr(p, "generic", False) for p in variant.programs)
        self._variants.setdefault(key, []).insert(0, variant)
        self._variants.move_to_end(key)
        self._evict(variant)
        self._last = variant
        return variant

    def _evict(self, newest):
        """Keep at most cache_size_limit entries, a family of shape-generic siblings (one model at several sizes,
        sharing every kernel) counting as one, as torch.compile's one dynamic graph does; within a family the least
        recently used sizes go once their arenas exceed GENERIC_ARENA_BYTES. Least recently used first."""
        while True:
            entries = [(k, v) for k, vs in self._variants.items() for v in reversed(vs)]  # LRU first
            units = {("family", _shape_free(k)) if v.generic else id(v) for k, v in entries}
            family = [(k, v) for k, v in entries if v.generic and newest.generic
                      and _shape_free(k) == _shape_free(newest.key)]
            if len(units) > self.cache_size_limit:
                key, old = entries[0]
            elif len(family) > 1 and sum(_arena_bytes(v) for _, v in family) > GENERIC_ARENA_BYTES:
                key, old = family[0]
            else:
                return
            self._variants[key].remove(old)
            if not self._variants[key]:
                del self._variants[key]
            if not (newest.generic and _shape_free(old.key) == _shape_free(newest.key)):
                self._warn_limit(old, newest)  # a shape-generic sibling is rebuilt without compiling: no warning
            old.release()

    def _warn_limit(self, old, new):
        """Warn once per compiled object, naming what differs between the evicted variant and the new one."""
        if "cache_size_limit" in self._warned:
            return
        self._warned.add("cache_size_limit")
        if old.key == new.key:
            reason = new.guard.explain(old.guard.expected) if new.guard and old.guard else "its guards failed"
        else:
            reason = _describe_change(self._names(), old.key, new.key)
        warnings.warn(f"graphnet.compile: {getattr(self.fn, '__name__', type(self.fn).__name__)} hit "
                      f"cache_size_limit ({self.cache_size_limit}): the least recently used variant was evicted. "
                      f"The guard that keeps failing: {reason}. Each variant is traced and compiled again; pass "
                      "dynamic=True for changing sizes, or raise cache_size_limit", stacklevel=4)

    # ---- introspection ---------------------------------------------------------------------------------------------
    def graph(self, stage="optimized"):
        """The last compiled graph at `stage`: 'traced', 'joint' (modules under grad), or 'optimized'."""
        if self._last is None or self._last.graphs is None:
            raise RuntimeError("graph(): nothing compiled yet — call the compiled object first")
        graphs = self._last.graphs
        if stage not in graphs:
            raise ValueError(f"graph(stage={stage!r}): available stages are {sorted(graphs)}")
        return graphs[stage]

    def kernels(self):
        """{kernel name: generated source} of the last compiled entry, each Program's driver included."""
        out = {}
        for prog in (self._last.programs or ()) if self._last is not None else ():
            for i, source in enumerate(prog.driver_sources):
                out[f"{prog.graph.meta.get('name', 'program')}.driver{i}"] = source
            for node in prog.graph.nodes:
                if node.op == "fused":
                    out[f"{prog.graph.meta.get('name', 'program')}.{node.outputs[0].name}"] = prog.render_kernel(
                        node.attrs["kernel"])
        return out

    def stats(self):
        """Kernel counts (steps run, and distinct generated kernels: identical layers share theirs), fusion groups,
        planned memory and compile times of the last compiled entry."""
        if self._last is None or self._last.programs is None:
            return {}
        progs = self._last.programs
        return {"programs": len(progs), "kernels": sum(len(p.steps) for p in progs),
                "distinct_kernels": len({src for p in progs for src in p.kernel_sources()}),
                "fused_groups": sum(p.graph.meta.get("fuse", {}).get("groups", 0) for p in progs),
                "planned_peak_bytes": sum(p.graph.meta.get("plan_memory", {}).get("peak_bytes_after", 0)
                                          for p in progs),
                "compile_seconds": self._last.compile_seconds, "passes": self._last.pass_reports,
                "variants": sum(len(vs) for vs in self._variants.values())}


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

    return lambda g, shape_generic: CudaProgram(g, dev.index or 0)


def _build_program(graph, name, shape_generic=False):
    make = _program_class(graph, name)
    t0 = time.perf_counter()
    optimized, report = optimize(graph)
    optimized.meta["name"] = name
    t1 = time.perf_counter()
    prog = make(optimized, shape_generic)
    return prog, optimized, report, {"passes": t1 - t0, "codegen": time.perf_counter() - t1}


def _arrays(tensors):
    return [_contiguous(t._data) for t in tensors]


def _contiguous(arr):
    """A C-contiguous array of `arr`'s values: NumPy's, or a device array as is (graphnet's are contiguous)."""
    if isinstance(arr, np.ndarray) and not arr.flags.c_contiguous:
        return np.ascontiguousarray(arr)  # only here: it would turn a 0-d array into a 1-d one
    return arr


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

    def __init__(self, fn, fullgraph, dynamic=None, cache_size_limit=CACHE_SIZE_LIMIT):
        super().__init__(fn, fullgraph, dynamic, cache_size_limit)
        self._with_kwargs = {}  # keyword names -> fn taking them positionally (what is traced)

    def __call__(self, *args, **kwargs):
        fn = self.fn
        if kwargs:
            fn = self._positional(len(args), tuple(kwargs))
            args = args + tuple(kwargs.values())
        refs = []
        key = _guard_key(args, refs, (fn,) if kwargs else ())
        variant = self._lookup(key)
        if variant is None:
            if not self._miss(key):
                return fn(*args)
            variant = self._add(key, refs, lambda generic: self._build(fn, args, generic))
        if variant.programs is None:
            return fn(*args)
        return self._run(variant, args)

    def _positional(self, n, names):
        fn = self._with_kwargs.get((n, names))
        if fn is None:
            def fn(*args):
                return self.fn(*args[:n], **dict(zip(names, args[n:])))
            fn.__name__ = getattr(self.fn, "__name__", "fn")
            self._with_kwargs[(n, names)] = fn
        return fn

    def _build(self, fn, args, shape_generic):
        t0 = time.perf_counter()
        traced = trace(fn, *args)
        prog, optimized, report, secs = _build_program(traced.graph, "step", shape_generic)
        secs["trace"] = time.perf_counter() - t0 - secs["passes"] - secs["codegen"]
        variant = _Variant(None, None, traced, {"traced": traced.graph, "optimized": optimized}, [prog], secs, report)
        variant.guard = Guard(traced, module_refs(self.fn), self.fn)
        state = dict(traced._state)  # a gradient input is fed from its owner's .grad at each call
        variant.feed_plan = [(0, None) if v.role == "input" else (2, traced.grad_inputs[v.name])
                             if v.name in traced.grad_inputs else (1, state.get(v.name)) for v in prog.graph.inputs]
        return variant

    def _run(self, variant, args):
        traced, prog = variant.traced, variant.programs[0]
        traced.refresh_scalars()
        user = iter(_leaves(args))
        feeds = [next(user) if how == 0 else t if how == 1 else t.grad for how, t in variant.feed_plan]
        outs, wbs = prog.run(_arrays(feeds))
        _apply_writebacks(prog, wbs, feeds)
        return _unflatten(traced._out_spec, iter(_output_tensors(prog, outs)))


def _output_tensors(prog, arrays):
    """Tensors for a Program's outputs: arrays it wrote freshly are handed over, anything else is copied."""
    return [Tensor._wrap(a if owned else _copy(a), v.dtype, v.type.device)
            for a, v, owned in zip(arrays, prog.graph.outputs, prog.owned_outputs)]


def _has_lazy_modules(model):
    """Whether a lazy module (LazyLinear, LazyConv2d, LazyBatchNorm2d, ...) in `model` still waits for its first
    input: its parameters have no shape to trace yet."""
    return any(getattr(m, "has_uninitialized_params", lambda: False)() for m in getattr(model, "modules", tuple)())


def _leaves(args):
    """The tensors in `args`, nested ones included, in the order the trace made them inputs."""
    out = []
    _flatten(args, out)
    return out


class CompiledModule(_Compiled):
    """compile(model): shares the model's parameters; forward (and backward, when needed) run compiled."""

    def __init__(self, model, fullgraph, dynamic=None, cache_size_limit=CACHE_SIZE_LIMIT):
        super().__init__(model, fullgraph, dynamic, cache_size_limit)
        self.model = model

    def __getattr__(self, name):
        if name in ("model", "fn", "fullgraph") or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def __call__(self, *args):
        if _has_lazy_modules(self.model):  # their shapes come from this input: run it eagerly, then compile
            return self.model(*args)
        needs_grad = is_grad_enabled() and (any(p.requires_grad for p in self.model.parameters()) or any(
            a.requires_grad for a in _leaves(args)))
        refs = []
        key = _guard_key(args, refs, (needs_grad,))
        variant = self._lookup(key)
        if variant is None:
            variant = self._add(key, refs, lambda generic: self._build(args, needs_grad, generic))
        if variant.programs is None:
            return self.model(*args)
        return self._run(variant, args, needs_grad)

    def _build(self, args, needs_grad, shape_generic):
        t0 = time.perf_counter()
        traced = trace(self.model, *args)  # under the caller's grad mode: forward code may read is_grad_enabled()
        variant = self._build_programs(traced, args, needs_grad, shape_generic, t0)
        variant.guard = Guard(traced, [self.model])
        return variant

    def _build_programs(self, traced, args, needs_grad, shape_generic, t0):
        from ..passes import autodiff, prune_grads, split

        graphs = {"traced": traced.graph}
        if not needs_grad:
            prog, optimized, report, secs = _build_program(traced.graph, "forward", shape_generic)
            graphs["optimized"] = optimized
            return _Variant(None, None, traced, graphs, [prog], secs, report)
        differentiable = [v for v in traced.graph.inputs if v.dtype.is_floating_point and v.role != "buffer"]
        used = _ancestors(traced.graph.outputs)  # an input no output depends on keeps grad None, as in eager
        wrt = [v for v in differentiable if v in used and self._requires_grad(traced, v, args)]
        grad_outputs = _grad_outputs(traced.graph, [v.name for v in wrt])
        # one grad_output per distinct output value that carries a gradient (a value returned twice gets the sum)
        first = {traced.graph.outputs[j].name: j for j in sorted(grad_outputs, reverse=True)}
        seeds = sorted(first.values()) or [0]
        joint = prune_grads(autodiff(traced.graph, wrt=differentiable, outputs=seeds, seed_inputs=True),
                            requested=[v.name for v in wrt])
        fwd, bwd = split(joint)
        graphs["joint"] = joint
        fprog, fopt, frep, fsecs = _build_program(fwd, "forward", shape_generic)
        bprog, bopt, brep, bsecs = _build_program(bwd, "backward", shape_generic)
        graphs.update(optimized=fopt, backward=bopt)
        secs = {k: fsecs[k] + bsecs[k] for k in fsecs}
        secs["trace+autodiff"] = time.perf_counter() - t0 - secs["passes"] - secs["codegen"]
        entry = _Variant(None, None, traced, graphs, [fprog, bprog], secs,
                         {"prune_grads": joint.meta["prune_grads"], "forward": frep, "backward": brep})
        entry.wrt = [v.name for v in wrt]
        entry.grad_outputs = grad_outputs
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
        entry.traced.refresh_scalars()
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
                if j in entry.grad_outputs:
                    t.requires_grad_from(node, j)
        return _unflatten(entry.traced._out_spec, iter(tensors))


def _grad_outputs(graph, wrt):
    """Positions of the outputs that require grad by eager autograd's rule (autograd.record): floating values made
    by an op with a gradient rule from a value that requires grad, starting at the `wrt` inputs. An output reached
    only through a bool/int cast or a comparison gets no grad_fn, as in eager mode."""
    from ..ir.ops import OPS

    carrying = set(wrt)
    for node in graph.topo_order():
        opdef = OPS.get(node.op)
        differentiable = opdef is None or opdef.grad is not None  # special ops are taken as differentiable
        if differentiable and any(v.name in carrying for v in node.inputs):
            carrying.update(v.name for v in node.outputs if v.dtype.is_floating_point)
    return {j for j, v in enumerate(graph.outputs) if v.name in carrying}


def _ancestors(values):
    """Every value the given ones are computed from, themselves included."""
    seen, stack = set(), list(values)
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            stack.extend(v.producer.inputs)
    return seen


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
        grad_inputs = {v.name: v for v in bprog.graph.inputs if v.role == "grad_output"}
        for j, out in enumerate(self.entry.traced.graph.outputs):
            v = grad_inputs.get(f"grad_{out.name}")
            g = grad_outputs[j] if j < len(grad_outputs) else None
            if v is None or g is None:
                continue
            g = _contiguous(g._data)
            by_name[v.name] = g if v.name not in by_name else by_name[v.name] + g  # one value returned twice
        for v in grad_inputs.values():
            by_name.setdefault(v.name, _zeros(v.type))
        outs, _ = bprog.run([by_name[v.name] for v in bprog.graph.inputs])
        grads = bprog.graph.meta["grads"]
        types = {v.name: v.type for v in self.entry.programs[0].graph.inputs}
        return tuple(Tensor._wrap(_copy(outs[grads[name]]), types[name].dtype, types[name].device)
                     for name in self.entry.wrt)

    def release(self):
        self.saved, self._freed = [], True
