"""Eager autograd: the tape of `Function` nodes, grad modes, and the backward engine.

Gradient rules come from each op's `OpDef.grad`, written with ops, so the engine only orders the work: it runs the
rules (under no_grad unless create_graph) and accumulates into leaves' `.grad`.
"""
import threading

from ..ir.ops import GradContext

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "enabled", True)


def _set_enabled(flag):
    _state.enabled = bool(flag)


def is_inference_mode_enabled():
    return getattr(_state, "inference", False)


class _GradMode:
    """Base of the grad-mode context managers; also usable as decorators."""

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with self.__class__(*self._args):
                return fn(*args, **kwargs)

        return wrapped

    _args = ()

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_enabled(self._mode)

    def __exit__(self, *exc):
        _set_enabled(self._prev)
        return False


class _NoParamGradMode(_GradMode):
    """A grad mode that also decorates when used bare, as PyTorch's: `@no_grad` as well as `@no_grad()`."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_NoParamGradMode):  # noqa: N801
    """Ops record no graph inside; results do not require grad."""

    _mode = False


class enable_grad(_NoParamGradMode):  # noqa: N801
    _mode = True


class set_grad_enabled(_GradMode):  # noqa: N801
    def __init__(self, mode):
        self._mode = bool(mode)
        self._args = (mode,)
        self._prev = is_grad_enabled()
        _set_enabled(mode)

    def __enter__(self):
        pass


class inference_mode(_GradMode):  # noqa: N801
    """Like no_grad, and flags the results as inference tensors (nothing is ever saved for backward)."""

    def __new__(cls, mode=True):
        if isinstance(mode, bool):
            return super().__new__(cls)
        return cls()(mode)  # bare @inference_mode on a function

    def __init__(self, mode=True):
        self._mode = not mode
        self._args = (mode,)

    def __enter__(self):
        super().__enter__()
        self._prev_inf = is_inference_mode_enabled()
        _state.inference = not self._mode

    def __exit__(self, *exc):
        _state.inference = self._prev_inf
        return super().__exit__(*exc)


# ---- graph nodes --------------------------------------------------------------------------------------------------
def _camel(name):
    return "".join(part.capitalize() for part in name.split("_"))


class SavedTensor:
    """A tensor kept for backward plus the version it had, so in-place changes after saving are caught."""

    __slots__ = ("tensor", "version", "owner", "out_nr")

    def __init__(self, tensor, owner=None, out_nr=0):
        self.tensor, self.version, self.owner, self.out_nr = tensor, tensor._version[0], owner, out_nr

    def unpack(self, fn):
        t = self.tensor
        if t._version[0] != self.version:
            producer = f"output {self.out_nr} of {self.owner.name()}" if self.owner is not None else "a leaf"
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace operation: "
                f"[graphnet.{t.dtype.legacy_name} {list(t.shape)}], which is {producer}, is at version "
                f"{t._version[0]}; expected version {self.version} instead. Hint: the tensor was saved by "
                f"{fn.name()}; avoid changing it in place (use an out-of-place op or .clone()).")
        return t


class Node:
    """Base of backward-graph nodes: `next_functions` is a tuple of (node or None, input index)."""

    __slots__ = ("next_functions", "_pre_hooks", "_post_hooks", "__weakref__")

    def __init__(self):
        self.next_functions = ()
        self._pre_hooks = []
        self._post_hooks = []

    def register_hook(self, fn):
        """fn(grad_inputs, grad_outputs) runs after this node computed its input gradients."""
        self._post_hooks.append(fn)
        return _Handle(self._post_hooks, fn)

    def register_prehook(self, fn):
        self._pre_hooks.append(fn)
        return _Handle(self._pre_hooks, fn)

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"


class _Handle:
    """Returned by register_*hook; `remove()` takes the hook out."""

    def __init__(self, hooks, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self):
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


class AccumulateGrad(Node):
    """The sink for a leaf tensor: adds incoming gradients into `variable.grad`."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def name(self):
        return "AccumulateGrad"


class Function(Node):
    """One recorded op: its OpDef, the saved tensors its gradient rule reads, and the input types."""

    __slots__ = ("opdef", "attrs", "in_types", "out_types", "needs_input_grad", "_saved_in", "_saved_out", "_freed",
                 "_out_hooks", "metadata")

    def __init__(self, opdef, attrs, in_types, out_types, needs_input_grad):
        super().__init__()
        self.opdef, self.attrs = opdef, attrs
        self.in_types, self.out_types, self.needs_input_grad = in_types, out_types, needs_input_grad
        self._saved_in, self._saved_out, self._freed = {}, {}, False
        self._out_hooks = None
        self.metadata = {}

    def name(self):
        return self.metadata.get("name") or f"{_camel(self.opdef.name)}Backward0"

    @property
    def saved_tensors(self):
        self._check_alive()
        return tuple(s.unpack(self) for s in (*self._saved_in.values(), *self._saved_out.values()))

    def _check_alive(self):
        if self._freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved tensors after they "
                f"have already been freed) in {self.name()}. Saved intermediate values of the graph are freed when "
                "you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward through "
                "the graph a second time or if you need to access saved tensors after calling backward.")

    def apply(self, grad_outputs):
        """Run the op's gradient rule on the incoming gradients; one result per input."""
        if self.opdef.save_inputs or self.opdef.save_outputs:
            self._check_alive()
        n_in = len(self.in_types)
        ctx = GradContext([self._saved_in[i].unpack(self) if i in self._saved_in else None for i in range(n_in)],
                          [self._saved_out[i].unpack(self) if i in self._saved_out else None
                           for i in range(len(self.out_types))],
                          self.in_types, self.out_types, self.attrs, self.needs_input_grad)
        grads = self.opdef.grad(ctx, *grad_outputs)
        if len(grads) != n_in:
            raise RuntimeError(f"{self.name()}: gradient rule returned {len(grads)} gradients for {n_in} inputs")
        for i, (g, t) in enumerate(zip(grads, self.in_types)):
            if g is not None and tuple(g.shape) != t.shape:
                raise RuntimeError(f"Function {self.name()} returned an invalid gradient at index {i} - got "
                                   f"{list(g.shape)} but expected shape compatible with {list(t.shape)}")
        return grads

    def release(self):
        self._saved_in, self._saved_out, self._freed = {}, {}, True


def record(opdef, tensors, attrs, out_types, outputs):
    """Attach a Function to `outputs` when grad mode is on and some input requires grad (volatile wins)."""
    wanted = False
    for t in tensors:
        if t._volatile:
            for o in outputs:
                o._volatile = True
            return
        wanted = wanted or t._requires_grad
    if not wanted or opdef.grad is None or not is_grad_enabled():
        return
    needs = tuple(t._requires_grad for t in tensors)
    fn = Function(opdef, attrs, [t._type() for t in tensors], out_types, needs)
    fn.next_functions = tuple(gradient_edge(t) if t.requires_grad else (None, 0) for t in tensors)
    for i in opdef.saved_inputs(needs):
        fn._saved_in[i] = SavedTensor(tensors[i], tensors[i].grad_fn, tensors[i]._output_nr)
    for j in opdef.save_outputs:
        fn._saved_out[j] = SavedTensor(outputs[j].detach_alias(), fn, j)
    for j, o in enumerate(outputs):
        if o.dtype.is_floating_point:
            o.requires_grad_from(fn, j)


def _edge(t):
    """The node a gradient for `t` flows into: its grad_fn, or its leaf AccumulateGrad node."""
    if t.grad_fn is not None:
        return t.grad_fn
    if t._accumulator is None:
        t._accumulator = AccumulateGrad(t)
    return t._accumulator


def gradient_edge(t):
    return (_edge(t), t._output_nr if t.grad_fn is not None else 0)
