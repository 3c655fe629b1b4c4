"""cse: common-subexpression elimination. Two nodes with the same op, the same input Values and structurally equal
attrs compute the same thing (the IR is functional: in-place updates are write-backs), so the later one is merged
into the earlier. Constants with equal dtype, shape and bytes merge too. Random or stateful ops (OpDef kind
'creation', names with rand/dropout/bernoulli) and `fused` nodes are never merged. One sweep in program order is
enough: a merged node's users are rewired before they are visited. Report: graph.meta['cse'].
"""
import hashlib
from collections import Counter

import numpy as np

COMMUTATIVE = {"add", "mul", "maximum", "minimum", "eq", "ne", "logical_and", "logical_or"}
RANDOM_MARKERS = ("rand", "dropout", "bernoulli")
NEVER_MERGED = {"input", "output", "fused"}


def is_nondeterministic(node):
    """True for ops whose result is not a function of their inputs (random draws, creation with hidden state)."""
    if node.op in ("input", "constant", "output"):
        return False
    return node.opdef.kind == "creation" or any(m in node.op for m in RANDOM_MARKERS)


def cse(graph):
    """A copy of `graph` where duplicate computations and duplicate constants are merged into their first copy."""
    g = graph.copy()
    seen, merged = {}, Counter()
    pos = {v: (i, v.index) for i, n in enumerate(g.nodes) for v in n.outputs}
    for node in g.nodes:
        if node.op in NEVER_MERGED or is_nondeterministic(node):
            continue
        key = _key(node, pos)
        first = seen.setdefault(key, node)
        if first is node:
            continue
        _merge(g, node, first)
        merged["constants" if node.op == "constant" else "nodes"] += 1
    g.meta["cse"] = {"merged": sum(merged.values()), "constants_merged": merged["constants"],
                     "nodes_merged": merged["nodes"]}
    return g


def _merge(graph, dup, keep):
    """Point every use of `dup`'s outputs at `keep`'s and erase `dup`; a forward copy keeps the forward phase."""
    for old, new in zip(dup.outputs, keep.outputs):
        graph.replace_all_uses(old, new)
    if dup.meta.get("phase") == "forward":
        keep.meta["phase"] = "forward"
    graph.erase_node(dup)


def _key(node, pos):
    """What makes two nodes interchangeable: op, inputs (order-free for commutative ops), attrs, output types."""
    if node.op == "constant":
        return ("constant", node.outputs[0].type, array_key(node.attrs["value"]))
    inputs = [(pos[v], v) for v in node.inputs]
    if node.op in COMMUTATIVE:
        inputs.sort(key=lambda item: item[0])
    return (node.op, tuple(v for _, v in inputs), freeze(node.attrs), tuple(v.type for v in node.outputs))


def array_key(array):
    """Dtype, shape and a digest of the bytes: NaNs with equal bits merge, 0.0 and -0.0 do not."""
    a = np.ascontiguousarray(array)  # (at least 1-d: the shape is read from `array`)
    return (a.dtype.str, np.shape(array), hashlib.blake2b(a.view(np.uint8).reshape(-1), digest_size=16).hexdigest())


def freeze(obj):
    """A hashable structural key for an attr value: containers by content, arrays by bytes, floats by repr (so
    -0.0 != 0.0 and nan == nan), unhashable leftovers by identity (equal to nothing else). Attrs nest shallowly."""
    if isinstance(obj, dict):
        return ("dict", tuple(sorted(((repr(k), freeze(v)) for k, v in obj.items()), key=lambda kv: kv[0])))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(freeze(x) for x in obj))
    if isinstance(obj, np.ndarray):
        return ("ndarray",) + array_key(obj)
    if isinstance(obj, slice):
        return ("slice", freeze(obj.start), freeze(obj.stop), freeze(obj.step))
    if isinstance(obj, (float, np.floating)):
        return (type(obj).__name__, repr(float(obj)))
    try:
        hash(obj)
    except TypeError:
        return ("id", id(obj))
    return (type(obj).__name__, obj)
