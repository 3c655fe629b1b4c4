"""GraphBuilder: the interpreter that turns ops bound on IR Values into new nodes of a Graph.

Graph autodiff runs the ops' gradient rules under it, so each `op.<name>` call in a rule appends a backward node;
Python numbers in promoting positions become constants, as the eager interpreter makes them 0-d tensors.
"""
import numpy as np

from ..core.bind import Interpreter, promote
from ..core.types import TensorType
from .graph import Value


class GraphBuilder(Interpreter):
    """Appends a node to `graph` for every op bound while active; `meta` goes on each new node."""

    operand = Value

    def __init__(self, graph, meta=None):
        self.graph, self.meta = graph, dict(meta or {})

    def process(self, opdef, args, attrs):
        if opdef.promote:
            args = promote(opdef, args, self)
        for i, a in enumerate(args):
            if not isinstance(a, Value):
                raise TypeError(f"{opdef.name}(): argument {i} must be a Value, not {type(a).__name__}")
        out = opdef.infer(*(v.type for v in args), **attrs)
        types = [out] if isinstance(out, TensorType) else list(out)
        outs = self.graph.add_node(opdef.name, list(args), attrs, types, meta=self.meta).outputs
        return outs[0] if opdef.n_outputs == 1 else tuple(outs)

    def scalar(self, value, dtype, like):
        return self.graph.add_constant(np.asarray(value, dtype=dtype.np))
