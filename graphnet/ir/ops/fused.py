"""The `fused` op: one node standing for a fusion group made by passes/fuse.py.

attrs: `subgraph` (the group's nodes as a Graph, so the NumPy interpreter stays the oracle) and `kernel` (the
backend-neutral LoopKernel the code generators render). Its outputs vary per node (n_outputs=0 means variadic).
"""
from ...core.opdef import OpDef, register


def _infer(*types, subgraph, kernel):
    return [v.type for v in subgraph.outputs]


def _impl(*arrays, subgraph, kernel):
    from ..interpreter import interpret

    return tuple(interpret(subgraph, list(arrays)))


register(OpDef("fused", "opaque", _infer, _impl, n_outputs=0))
