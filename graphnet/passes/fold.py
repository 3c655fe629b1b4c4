"""fold: constant folding. A compute node whose inputs are all constants is run once with its NumPy `impl` and
replaced by a constant node.

Elementwise ops also look through broadcasts of constants (`expand` of a constant): they are evaluated on the
small unexpanded arrays and the result is broadcast again with one `expand`, so `div(expand(c), 12.0)` becomes
`expand(c / 12)`; deeper view chains of a constant (expand, reshape, permute) are applied to it first. `expand`
itself is never folded (it is a free view; materialising it only grows the graph).
A result of more than MAX_FOLD_ELEMENTS elements (64k) is left unfolded to keep graphs small; random ops, opaque
ops (`fused`, `to_device`) and device-resident results are never folded, and an op whose `impl` raises is left for
run time to report. Report: graph.meta['fold'] = {folded, skipped_large, skipped_errors}.
"""
from collections import Counter

import numpy as np

from ..core.types import TensorType
from .cse import is_nondeterministic

MAX_FOLD_ELEMENTS = 1 << 16
NEVER_FOLDED = {"expand"}
_VIEWS = {"expand", "reshape", "permute"}


def fold(graph):
    """A copy of `graph` with every foldable all-constant computation replaced by a constant."""
    g = graph.copy()
    report = Counter(folded=0, skipped_large=0, skipped_errors=0)
    for node in g.nodes:
        args = _constant_args(node) if _foldable(node) else None
        if args is None:
            continue
        out_shape = node.outputs[0].shape if node.opdef.kind != "elementwise" else \
            np.broadcast_shapes(*(np.shape(a) for a in args))
        if int(np.prod(out_shape)) * len(node.outputs) > MAX_FOLD_ELEMENTS:
            report["skipped_large"] += 1
            continue
        try:
            with np.errstate(all="ignore"):
                result = node.opdef.impl(*args, **node.attrs)
        except Exception:  # noqa: BLE001 - the same error is raised, and reported, when the graph runs
            report["skipped_errors"] += 1
            continue
        _replace(g, node, (result,) if len(node.outputs) == 1 else result)
        report["folded"] += 1
    g.meta["fold"] = dict(report)
    return g


def _foldable(node):
    if node.op in ("input", "constant", "output") or node.op in NEVER_FOLDED or not node.inputs:
        return False
    opdef = node.opdef
    return (opdef.kind != "opaque" and opdef.n_outputs == len(node.outputs) and not is_nondeterministic(node)
            and all(TensorType(v.shape, v.dtype) == v.type for v in node.outputs))


def _constant_args(node):
    """The input arrays if every input is a constant (or, for elementwise ops, views of one: a last `expand` is
    left to the op's own broadcasting, earlier views are applied to the constant), else None."""
    args = []
    for v in node.inputs:
        views, p = [], v.producer
        while node.opdef.kind == "elementwise" and p.op in _VIEWS:
            views.append(p)
            p = p.inputs[0].producer
        if p.op != "constant":
            return None
        value = p.attrs["value"]
        for view in reversed(views[1:] if views and views[0].op == "expand" else views):
            value = view.opdef.impl(value, **view.attrs)
        args.append(value)
    return args


def _replace(graph, node, results):
    """Swap `node` for constants (re-broadcast with `expand` where the folded array is smaller than the value)."""
    fed = [v.producer for v in node.inputs]
    for v, r in zip(node.outputs, results):
        new = graph.add_constant(np.array(r, dtype=v.dtype.np, order="C"), meta=dict(node.meta))
        if new.shape != v.shape:
            new = graph.add_node("expand", [new], {"shape": v.shape}, meta=dict(node.meta), before=node).outputs[0]
        graph.replace_all_uses(v, new)
    graph.erase_node(node)
    erase_dead(graph, fed)


def erase_dead(graph, nodes):
    """Erase those of `nodes` (and, transitively, their producers) that a rewrite left without users."""
    work = list(nodes)
    while work:
        node = work.pop()
        if node.graph is None or node.op in ("input", "output") or any(v.users for v in node.outputs):
            continue
        work.extend(v.producer for v in node.inputs)
        graph.erase_node(node)
