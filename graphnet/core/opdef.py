"""The op registry: one `OpDef` per primitive, read by eager mode, autograd, the tracer, passes and codegens."""
from dataclasses import dataclass, field
from typing import Callable, Optional

KINDS = ("elementwise", "reduce", "movement", "matmul", "conv", "pool", "opaque", "creation")


@dataclass(eq=False)
class OpDef:
    """Everything graphnet knows about one primitive op.

    infer(*types, **attrs) -> TensorType | tuple   shapes/dtypes of the outputs; raises OpError on bad input
    impl(*arrays, **attrs) -> ndarray | tuple      NumPy reference implementation (eager CPU, test oracle)
    grad(ctx, *grads) -> tuple                     gradient rule written with ops (`op.<name>(...)`: bind), one entry
                                                   per input, None where no gradient flows
    save_inputs / save_outputs                     which inputs/outputs the gradient rule reads (kept alive);
                                                   save_inputs may be a function of needs_input_grad
    promote                                        input positions that take part in type promotion
    check(*dtypes)                                 a rule on the promoting operands' own dtypes, run before
                                                   promotion hides them (sub refuses bool); raises OpError
    float_compute                                  integer inputs are promoted to the default float (div, exp, ...)
    expr                                           scalar template for elementwise ops, e.g. "({0} * {1})"
    kernel                                         hand-written template name for non-elementwise ops
    is_view                                        eager result may share memory with input 0
    bounds                                         (position of an int64 index input, check(idx, input shapes,
                                                   **attrs)) raising the eager error for an out-of-range index:
                                                   a compiled Program runs it on its inputs before any kernel
    """

    name: str
    kind: str
    infer: Callable
    impl: Callable
    grad: Optional[Callable] = None
    save_inputs: object = ()
    save_outputs: tuple = ()
    promote: tuple = ()
    check: Optional[Callable] = None
    float_compute: bool = False
    expr: Optional[str] = None
    kernel: Optional[str] = None
    is_view: bool = False
    bounds: Optional[tuple] = None
    n_outputs: int = 1
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"OpDef {self.name}: unknown kind {self.kind!r}")

    def __repr__(self):
        return f"OpDef({self.name}, {self.kind})"

    def saved_inputs(self, needs_input_grad):
        """The inputs to keep for backward when `needs_input_grad` says which gradients will be computed."""
        return self.save_inputs(needs_input_grad) if callable(self.save_inputs) else self.save_inputs


class OpError(RuntimeError):
    """A user error detected by an op's shape/dtype rule; the message names the op and its operands."""


OPS = {}


def register(opdef):
    """Add `opdef` to the registry (each primitive is defined once)."""
    if opdef.name in OPS:
        raise ValueError(f"op {opdef.name!r} registered twice")
    OPS[opdef.name] = opdef
    return opdef


def get_op(name):
    """The OpDef registered as `name`; a KeyError naming it otherwise."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"no op named {name!r} in the registry") from None


@dataclass
class GradContext:
    """What a gradient rule sees: saved inputs/outputs (None where not saved), input types, attrs, and which
    inputs need a gradient (so a rule can skip dead work, the eager face of `prune_grads`)."""

    inputs: list
    outputs: list
    in_types: list
    out_types: list
    attrs: dict
    needs_input_grad: tuple
