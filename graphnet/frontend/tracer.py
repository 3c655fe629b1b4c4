"""graphnet.trace: run a function or Module on symbolic tensors and record every op into an ir.Graph.

A symbolic tensor is an ordinary Tensor whose `_proxy` is a `Proxy` cell holding its IR Value; its `_data` is a
zero-strided dummy of the right shape and dtype, so shape/ndim/numel/size answer without any special path. Aliases
made by `.data`/`.detach()` share the cell, so an in-place write (which rebinds the cell) is seen by all of them.
Ops on concrete tensors only run eagerly (constant folding for free); concrete tensors that meet symbolic ones
become 'constant' nodes, or 'param' inputs when they are leaves that require grad. Reading a symbolic value
(.item(), bool(), .tolist(), .numpy()) raises GraphBreak naming the user's file:line.
"""
import functools
import inspect
import os
import sys

import numpy as np

from ..core import bind as _bind
from ..core import dtype as dt
from ..core.bind import Interpreter, promote
from ..core.device import CPU
from ..ir.graph import Graph
from . import autograd
from .eager import Eager, infer
from .tensor import GRAD_WATCH, Tensor

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class GraphBreak(RuntimeError):  # noqa: N818 - the name the API promises
    """The traced code needs a tensor's value (value-dependent control flow): it cannot be captured as a graph."""


class Proxy:
    """The cell a symbolic tensor (and its aliases) read their current IR Value from, and the Tracer it belongs to."""

    __slots__ = ("value", "tracer")

    def __init__(self, value, tracer):
        self.value, self.tracer = value, tracer

    def graph_break(self, what):
        """Raise GraphBreak for `what` (e.g. '.item()'), which needs the value of the tensor this cell stands for."""
        raise GraphBreak(f"{what} on a traced tensor (%{self.value.name}: {self.value.type}) needs its value, which is "
                         f"unknown while tracing, at {user_location()}. Value-dependent Python control flow cannot be "
                         "captured in a graph: use graphnet.where / masking, or move this code outside the traced "
                         "function.")


def user_location():
    """`file:line in function` of the innermost frame outside the graphnet package."""
    frame = sys._getframe(1)
    while frame is not None and _in_package(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


@functools.cache
def _in_package(filename):
    """Whether code of `filename` is graphnet's (asked for every frame of every traced op: ResNet-20's step had
    26,000 abspath calls)."""
    return os.path.abspath(filename).startswith(_PKG_DIR + os.sep)


def active():
    """The Tracer recording now, or None."""
    interpreter = _bind.current()
    return interpreter if isinstance(interpreter, Tracer) else None


def bind_state(t, name):
    """While tracing, make concrete tensor `t` (e.g. a generator's RNG state) a 'state' input named `name`, so the
    graph reads it at run time instead of freezing its current value; a no-op outside a trace or once bound."""
    tracer = active()
    if tracer is None or t._proxy is not None or id(t._data) in tracer._lifted:
        return
    tracer.bind(t, name, "state")


_STATE_FIELDS = ("_proxy", "_data", "_dtype", "_device", "_grad", "grad_fn", "_requires_grad", "_output_nr")


def _save(t):
    return tuple(getattr(t, f) for f in _STATE_FIELDS) + (t._version[0],)


class Tracer(Interpreter):
    """The tracing interpreter: records every op into `graph`, on symbolic tensors standing for its Values."""

    operand = Tensor

    def __init__(self, graph):
        self.graph = graph
        self._lifted = {}   # id(ndarray) -> (array, Value or Proxy) for concrete tensors met in the trace
        self._bound = []    # (tensor, input Value, saved fields) of tensors that stand for graph inputs
        self._aliases = []  # (tensor, saved fields) of concrete aliases the trace rebound
        self.modules = {}   # id -> Module called while tracing (its training flag and parameters are guarded)
        self.optimizers = {}  # id -> Optimizer stepped while tracing (its groups' structure is guarded)
        self.scalars = {}   # key -> (0-d float64 state tensor, read()) re-read before every compiled call
        self._grad_seen = set()  # ids of tensors whose .grad the trace has read or written
        self.grad_reads = []     # (tensor, whether its .grad was None) for each .grad first read, not written
        self._entry_grads = {}   # id(ndarray) -> (array, tensor): the .grad arrays those first reads found
        self.grad_inputs = {}    # input name -> tensor whose current .grad feeds it at every call

    def __enter__(self):
        GRAD_WATCH.append(self._grad_access)
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        GRAD_WATCH.remove(self._grad_access)
        for t, saved in reversed(self._aliases + [(t, saved) for t, _, saved in self._bound]):
            for name, val in zip(_STATE_FIELDS, saved[:-1]):
                setattr(t, name, val)
            t._version[0] = saved[-1]
        return False

    # ---- symbolic values ---------------------------------------------------------------------------------------
    def symbolic(self, value, requires_grad=False):
        """A new Tensor standing for `value`."""
        typ = value.type
        t = Tensor._wrap(np.broadcast_to(np.zeros((), typ.dtype.np), typ.shape), typ.dtype, typ.device)
        t._proxy, t._requires_grad = Proxy(value, self), requires_grad
        return t

    def value(self, t):
        """The IR Value a tensor stands for, lifting a concrete tensor on first use."""
        if t._proxy is not None:
            return t._proxy.value
        hit = self._lifted.get(id(t._data))
        if hit is not None and hit[0] is t._data:
            return hit[1].value if isinstance(hit[1], Proxy) else hit[1]
        if self._bind_entry_grad(t):
            return t._proxy.value
        if t.requires_grad and t.grad_fn is None:
            return self.bind(t, f"captured{len(self._bound)}", "param")
        v = self.graph.add_constant(t._host(), meta={"source": user_location()}, dtype=t.dtype)
        self._lifted[id(t._data)] = (t._data, v)
        return v

    def bind(self, t, name, role, target=None):
        """Make tensor `t` (a parameter, buffer or state) stand for a new graph input for the trace's duration."""
        v = self.graph.add_input(t._type(), name, role, target, meta={"requires_grad": t.requires_grad})
        self._bound.append((t, v, _save(t)))
        t._proxy = Proxy(v, self)
        self._lifted[id(t._data)] = (t._data, t._proxy)
        return v

    def _grad_access(self, t, is_write):
        """The first access to `t.grad` in the trace: a read makes the variant depend on whether it is None, and
        a gradient array found there is state the trace may accumulate into."""
        if id(t) in self._grad_seen:
            return
        self._grad_seen.add(id(t))
        if is_write:
            return
        g = t._grad
        self.grad_reads.append((t, g is None))
        if isinstance(g, Tensor) and g._proxy is None:
            self._entry_grads[id(g._data)] = (g._data, t)

    def _bind_entry_grad(self, t):
        """If `t` holds the array of a .grad the trace found on entry (backward accumulates through
        `.grad.data.add_`), make it a 'state' input fed from its owner's .grad at every call, not from this array:
        zero_grad(set_to_none=True) or an assigned .grad between calls replaces it. True if bound."""
        hit = self._entry_grads.pop(id(t._data), None)
        if hit is None or hit[0] is not t._data:
            return False
        owner = hit[1]
        name = next((f"{v.name}.grad" for b, v, _ in self._bound if b is owner), f"grad{len(self._bound)}")
        self.bind(t, name, "state")
        self.grad_inputs[name] = owner
        return True

    def touch_module(self, module):
        """Note a Module the traced code called: a compiled variant is only valid while its flags and
        parameters are the ones seen now."""
        self.modules.setdefault(id(module), module)

    def touch_optimizer(self, optimizer):
        self.optimizers.setdefault(id(optimizer), optimizer)

    def runtime_scalar(self, key, read):
        """A 0-d float64 'state' input holding `read()` (a Python number the traced code would otherwise bake in,
        e.g. a learning rate); the compiled caller writes `read()` into it before every call."""
        hit = self.scalars.get(key)
        if hit is None:
            t = Tensor._wrap(np.array(float(read()), np.float64), dt.float64, CPU)
            self.bind(t, f"scalar{len(self._bound)}", "state")
            hit = self.scalars[key] = (t, read)
        return hit[0]

    def process(self, opdef, args, attrs):
        """Every op is recorded, even on concrete tensors: a concrete tensor may be state that the traced function
        updates in place (an optimizer's momentum buffer), so running it eagerly would mutate the real tensor at
        trace time and lose the update from the graph. Constant subgraphs are left to `fold`. Autograd records the
        symbolic outputs like eager ones, so a traced training step holds its backward too."""
        if opdef.promote:
            args = promote(opdef, args, self)
        out_types = infer(opdef, args, attrs)
        if any(t.dtype in dt.HALF for t in out_types):
            raise GraphBreak(f"{opdef.name} gives a {out_types[0].dtype.name} result at {user_location()}: float16 "
                             "and bfloat16 run eagerly only (the compiled kernels have no half-precision types yet)")
        ins = [self.value(t) for t in args]
        node = self.graph.add_node(opdef.name, ins, attrs, out_types, meta={"source": user_location()})
        outs = [self.symbolic(v) for v in node.outputs]
        autograd.record(opdef, args, attrs, out_types, outs)
        return outs[0] if opdef.n_outputs == 1 else tuple(outs)

    scalar = Eager.scalar  # a Python number becomes a 0-d tensor, which the trace lifts to a constant

    def assign(self, dst, src):
        """dst <- src, functionally: dst's cell now holds src's Value (a concrete dst becomes a 'state' input)."""
        if active() is not self:
            raise RuntimeError("in-place write of a traced (symbolic) tensor outside of graphnet.trace")
        value = self.value(src)
        if dst._proxy is None:
            old = self._lifted.get(id(dst._data))
            if old is not None and isinstance(old[1], Proxy):
                self._aliases.append((dst, _save(dst)))
                dst._proxy = old[1]
            elif old is not None:
                self._to_state(old[1], dst)
            elif not self._bind_entry_grad(dst):
                self.bind(dst, f"state{len(self._bound)}", "state")
        dst._proxy.value = value

    def _to_state(self, const, t):
        """A constant that the trace writes to is really state: turn its node into a 'state' input bound to t."""
        node = const.producer
        node.op, node.attrs = "input", {"role": "state", "target": const.name}
        const.type = t._type()  # constants are host values; the state input lives where t does (e.g. a GPU)
        self._bound.append((t, const, _save(t)))
        t._proxy = Proxy(const, self)
        self._lifted[id(t._data)] = (t._data, t._proxy)

    def writebacks(self):
        """(value, input, kind) for every bound tensor whose data or .grad the trace changed."""
        out = []
        for t, v, saved in self._bound:
            if t._proxy is not None and t._proxy.value is not v:
                out.append((t._proxy.value, v, "data"))
            grad_before = saved[_STATE_FIELDS.index("_grad")]
            if isinstance(t._grad, Tensor) and t._grad is not grad_before:
                out.append((self.value(t._grad), v, "grad"))
        return out

    def bound_tensors(self):
        return [(v, t) for t, v, _ in self._bound]


# ---- output structure (tensors nested in tuples / lists / dicts) --------------------------------------------------
def _flatten(obj, leaves):
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return ("tensor",)
    if isinstance(obj, (tuple, list)):
        return (type(obj), [_flatten(o, leaves) for o in obj])
    if isinstance(obj, dict):
        return (dict, [(k, _flatten(o, leaves)) for k, o in obj.items()])
    return ("const", obj)


def _unflatten(spec, leaves):
    kind = spec[0]
    if kind == "tensor":
        return next(leaves)
    if kind == "const":
        return spec[1]
    if kind is dict:
        return {k: _unflatten(s, leaves) for k, s in spec[1]}
    items = [_unflatten(s, leaves) for s in spec[1]]
    return tuple(items) if kind is tuple else items if kind is list else kind(*items)


# ---- the public entry point ---------------------------------------------------------------------------------------
def _arg_names(fn, n):
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    star = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), "arg")
    return [names[i] if i < len(names) else f"{star}{i}" for i in range(n)]


def _module_state(fn, params, buffers):
    """(name, tensor, role) for the parameters and buffers of a Module-like `fn` plus explicit ones, deduplicated."""
    found, seen = [], set()
    sources = [(dict(params or {}).items(), "param"), (dict(buffers or {}).items(), "buffer")]
    if hasattr(fn, "named_parameters"):
        sources.insert(0, (fn.named_parameters(), "param"))
    if hasattr(fn, "named_buffers"):
        sources.insert(1, (fn.named_buffers(), "buffer"))
    for items, role in sources:
        for name, t in items:
            if isinstance(t, Tensor) and id(t) not in seen:
                seen.add(id(t))
                found.append((name, t, role))
    return found


class Traced:
    """A traced function: `.graph` (the forward ir.Graph), callable (runs the graph with the interpreter)."""

    def __init__(self, fn, graph, state, out_spec, tracer=None):
        self.fn, self.graph, self._state, self._out_spec = fn, graph, state, out_spec
        # what the trace depended on beyond its inputs (read by graphnet.compile's guards)
        self.modules = list(tracer.modules.values()) if tracer else []
        self.optimizers = list(tracer.optimizers.values()) if tracer else []
        self.scalars = list(tracer.scalars.values()) if tracer else []
        self.grad_inputs = dict(tracer.grad_inputs) if tracer else {}  # input name -> tensor: its .grad feeds it
        inputs = {id(t) for t, v, _ in tracer._bound if v.role == "input"} if tracer else set()
        # (tensor, was None) for each .grad the trace read before writing it, but a stand-in for an argument
        self.grad_reads = [(t, none) for t, none in tracer.grad_reads if id(t) not in inputs] if tracer else []

    @property
    def state(self):
        """{input name: live tensor} for the param/buffer/state inputs, read at every call (a tensor's current
        .grad for the gradient inputs)."""
        state = dict(self._state)
        for name, owner in self.grad_inputs.items():
            if owner.grad is None:
                raise RuntimeError(f"this trace accumulates into {name}, which is None now; trace again "
                                   "(graphnet.compile does so itself)")
            state[name] = owner.grad
        return state

    def __call__(self, *args):
        from ..ir.interpreter import interpret

        self.refresh_scalars()
        user = []
        _flatten(args, user)
        feeds = dict(zip((v.name for v in self.graph.inputs_by_role("input")), user))
        feeds.update(self.state)
        outs, wbs = interpret(self.graph, feeds, with_writebacks=True)
        self._write_back(wbs, feeds)
        values = iter(Tensor._wrap(np.array(a), v.dtype, v.type.device) for a, v in zip(outs, self.graph.outputs))
        return _unflatten(self._out_spec, values)

    def refresh_scalars(self):
        """Write the current value of every runtime scalar (learning rates, ...) into its state input."""
        for t, read in self.scalars:
            t._data[()] = read()

    def _write_back(self, arrays, feeds):
        from .autograd import no_grad

        for (value, target, kind), arr in zip(self.graph.writebacks, arrays):
            t = feeds[target.name]
            new = Tensor._wrap(np.array(arr), value.dtype, value.type.device)
            if kind == "grad":
                t.grad = new
            else:
                with no_grad():
                    t._set_storage(new)

    def print(self):
        print(self.graph)

    def __str__(self):
        return str(self.graph)


def trace(fn, *example_inputs, params=None, buffers=None):
    """Trace `fn(*example_inputs)` (a function or a Module) into a Traced holding the forward ir.Graph.

    Tensor arguments (also inside lists, tuples and dicts) become 'input' graph inputs; a Module's parameters/buffers
    (anything with named_parameters()/named_buffers()) and the `params`/`buffers` dicts become 'param'/'buffer'
    inputs.
    """
    graph = Graph()
    graph.meta["name"] = getattr(fn, "__name__", type(fn).__name__)
    tracer = Tracer(graph)
    names = _arg_names(getattr(fn, "forward", fn), len(example_inputs))
    args = [_symbolic_arg(tracer, name, a) for name, a in zip(names, example_inputs)]
    with tracer:
        for name, t, role in _module_state(fn, params, buffers):
            tracer.bind(t, name, role)
        result = fn(*args)
        leaves = []
        spec = _flatten(result, leaves)
        outputs = [tracer.value(t) for t in leaves]
        graph.set_outputs(outputs, tracer.writebacks())
        state = [(v.name, t) for v, t in tracer.bound_tensors() if v.role != "input"]
    return Traced(fn, graph, state, spec, tracer)


def _symbolic_arg(tracer, name, arg):
    """`arg` with every Tensor in it (nested in lists, tuples and dicts too) replaced by a symbolic 'input'."""
    leaves = []
    spec = _flatten(arg, leaves)
    symbolic = []
    for j, t in enumerate(leaves):
        v = tracer.graph.add_input(t._type(), name if spec == ("tensor",) else f"{name}_{j}", "input",
                                   meta={"requires_grad": t.requires_grad})
        s = tracer.symbolic(v, t.requires_grad)
        tracer._bound.append((s, v, _save(s)))
        symbolic.append(s)
    return _unflatten(spec, iter(symbolic)) if leaves else arg
