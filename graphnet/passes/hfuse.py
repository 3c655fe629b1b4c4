"""hfuse: horizontal fusion — independent elementwise `fused` nodes whose results only leave the graph become one node.

The members are the groups `fuse` left whose every output goes only to the output node (graph outputs and
write-backs): an optimizer's per-parameter updates, typically. Such nodes cannot depend on one another (no member
reads another's result), so one node running their loop nests in turn (a HorizontalKernel) computes the same thing
with one compile and one call. It sits where the last member was, so every input exists; moving a member later is
safe because no node reads its results, and readers of the old value of a tensor it updates in place still come
first: plan_memory, which runs after this pass, only writes in place over an input at its last use, and only over
an input no other member reads.
"""
from dataclasses import replace

from ..ir.graph import Graph
from ..ir.kernel import HorizontalKernel, LoopKernel

EPILOGUE_PRODUCERS = {"matmul", "conv2d"}  # a fused loop alone after one may be applied by its kernel (library.py)
PER_KIND = 4  # members of one kind (same loop, sizes and dtypes) per merged node


def hfuse(graph):
    """A copy of `graph` with each set of mergeable nodes (per device) as one `fused` node; meta['hfuse'] reports
    the groups made and the nodes they merged."""
    g = graph.copy()
    groups = _groups(g)
    for members in groups:
        _merge(g, members)
    g.meta["hfuse"] = {"groups": len(groups), "merged": sum(len(m) for m in groups)}
    return g


def mergeable(node):
    """An elementwise fused loop whose outputs go to the output node alone (never an epilogue a GEMM or conv could
    absorb: the only reader of such a producer's result keeps its own node)."""
    kernel = node.attrs.get("kernel") if node.op == "fused" else None
    if type(kernel) is not LoopKernel or kernel.is_reduction or not node.outputs:
        return False
    if any(u.op != "output" for v in node.outputs for u in v.users):
        return False
    return not any(v.producer.op in EPILOGUE_PRODUCERS and len(v.users) == 1 for v in node.inputs)


def _kind(node):
    """Nodes of one kind run the same loop over the same sizes (one parameter's update in each of n layers)."""
    return repr(replace(node.attrs["kernel"], name=""))


def _groups(graph):
    """Mergeable nodes in program order, by the device of their first output: the nodes of a kind that occurs
    more than once (one parameter's update in each of n layers) in runs of PER_KIND, and each device's one-of-a-kind
    nodes together. So a deeper model of repeated layers repeats the same merged kernels instead of growing one
    whose compile time grows with depth. Groups of two or more."""
    kinds = {}
    for node in graph.nodes:
        if mergeable(node):
            kinds.setdefault((node.outputs[0].type.device, _kind(node)), []).append(node)
    groups, singles = [], {}
    for (device, _), nodes in kinds.items():
        if len(nodes) == 1:
            singles.setdefault(device, []).extend(nodes)
        else:
            groups += [nodes[k:k + PER_KIND] for k in range(0, len(nodes), PER_KIND)]
    groups += singles.values()
    order = {n: i for i, n in enumerate(graph.nodes)}
    return [sorted(g, key=order.get) for g in groups if len(g) > 1]


def _merge(graph, members):
    """Replace `members` (in program order) by one fused node placed before the last of them."""
    inputs, maps = [], []
    for m in members:
        maps.append([_index(inputs, v) for v in m.inputs])
    kernel = HorizontalKernel.of([m.attrs["kernel"] for m in members], maps)
    outputs = [v for m in members for v in m.outputs]
    sub = _subgraph([m.attrs["subgraph"] for m in members], maps, inputs)
    meta = {"members": list(dict.fromkeys(op for m in members for op in m.meta.get("members", ()))),
            "horizontal": [list(m.meta.get("members", ())) for m in members]}
    node = graph.add_node("fused", inputs, {"subgraph": sub, "kernel": kernel}, [v.type for v in outputs], meta=meta,
                          before=members[-1])
    for old, new in zip(outputs, node.outputs):
        graph.replace_all_uses(old, new)
    for m in members:
        graph.erase_node(m)


def _index(values, v):
    """The position of `v` in `values`, appending it when new (merged inputs are deduplicated)."""
    if v not in values:
        values.append(v)
    return values.index(v)


def _subgraph(subs, maps, inputs):
    """The members' subgraphs as one Graph over the merged inputs (the interpreter oracle of the merged node)."""
    g = Graph()
    merged = [g.add_input(v.type, f"in{i}") for i, v in enumerate(inputs)]
    outputs = []
    for sub, in_map in zip(subs, maps):
        vmap = {v: merged[j] for v, j in zip(sub.inputs, in_map)}
        for n in sub.nodes:
            if n.op == "constant":
                vmap[n.outputs[0]] = g.add_constant(n.attrs["value"])
            elif n.op not in ("input", "output"):
                new = g.add_node(n.op, [vmap[v] for v in n.inputs], n.attrs, [v.type for v in n.outputs])
                vmap.update(zip(n.outputs, new.outputs))
        outputs += [vmap[v] for v in sub.outputs]
    g.set_outputs(outputs)
    return g
