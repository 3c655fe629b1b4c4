"""Index checks a compiled Program runs on its inputs before its first kernel, so a bad label or index raises the
eager error while every parameter is still untouched.

An op that reads memory at data-dependent positions declares `OpDef.bounds` (which input is the index and the
check that raises its eager error). When that input is a graph input (labels, gather indices), possibly reshaped,
the Program checks the input array up front: a min/max pass over a few labels, microseconds. An index computed
inside the graph is checked by the op's own step where it runs (see `raise_eager_error`).
"""
import numpy as np

from ..ir.interpreter import interpret
from ..ir.ops import OPS


def _graph_input(v):
    """The graph input that `v` is (through reshapes, which keep the values), or None."""
    while v.producer.op == "reshape":
        v = v.producer.inputs[0]
    return v if v.producer.op == "input" else None


class InputChecks:
    """The bounds checks of `graph`'s nodes whose index is one of its inputs."""

    def __init__(self, graph):
        position = {v: i for i, v in enumerate(graph.inputs)}
        self.checks = []
        for node in graph.nodes:
            rule = getattr(OPS.get(node.op), "bounds", None)
            source = rule and _graph_input(node.inputs[rule[0]])
            if source is not None:
                shapes = [v.type.shape for v in node.inputs]
                self.checks.append((position[source], node.inputs[rule[0]].type.shape, rule[1], shapes,
                                    dict(node.attrs)))

    def __call__(self, inputs, to_host=np.asarray):
        """Raise the eager error of the first bad index among `inputs` (arrays in graph-input order)."""
        for i, shape, check, shapes, attrs in self.checks:
            check(to_host(inputs[i]).reshape(shape), shapes, **attrs)


def raise_eager_error(graph, inputs):
    """A kernel found an index out of range that is computed inside the graph: rerun the graph with the NumPy impls,
    whose check raises the eager error naming the value."""
    try:
        interpret(graph, [np.reshape(a, v.type.shape) for a, v in zip(inputs, graph.inputs)])
    except (IndexError, RuntimeError) as e:
        raise e from None
    raise RuntimeError("internal error: a compiled kernel flagged an out-of-range index the NumPy impls accept")
