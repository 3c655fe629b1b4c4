"""fuse: partition a graph into loop-fusion groups, each replaced by one `fused` node carrying a LoopKernel.

A group is a tree of elementwise ops over one iteration domain, optionally rooted at a reduction (its elementwise
prologue fused in). Groups grow from consumers to producers, taking a producer only when every user of it is
already in the group (or, for elementwise groups, is the graph's output node: the value becomes one more output).
That can neither create a cycle nor duplicate work, and a value needed on both sides of a boundary is materialised
once. View ops (reshape/permute/expand/basic getitem) between a buffer and a group are folded into the group's
strided reads. Everything else (GEMM, conv, pooling, indexing) stays a node of its own.
"""
from ..ir.graph import Graph
from ..ir.kernel import Access, LoopKernel, Stmt, contiguous_strides
from ..ir.ops.indexing import basic_index
from ..ir.ops.util import norm_dims

REDUCE_OPS = {"sum": "sum", "mean": "sum", "amax": "max", "amin": "min", "sum_to": "sum"}
VIEW_OPS = {"reshape", "permute", "expand", "getitem"}
UNFUSABLE = {"copy"}  # an explicit copy must stay a materialisation


def fuse(graph):
    """A copy of `graph` where every loop-fusion group is one `fused` node; meta['fuse'] reports the groups."""
    g = graph.copy()
    groups = _partition(g)
    order = {n: i for i, n in enumerate(g.nodes)}  # program order; replacing a group keeps the others' order
    for members in groups:
        _replace_group(g, members, order)
    g.meta["fuse"] = {"groups": len(groups), "fused_nodes": sum(len(m) for m in groups)}
    return g


def _fusable(node):
    if node.op in UNFUSABLE or node.op in ("input", "constant", "output"):
        return False
    if node.op in REDUCE_OPS:
        return node.outputs[0].type.dtype.is_floating_point
    return node.op != "fused" and node.opdef.kind == "elementwise"


def _domain(node):
    return node.inputs[0].type.shape if node.op in REDUCE_OPS else node.outputs[0].type.shape


def _partition(graph):
    """Groups as lists of nodes in program order; consumers claim producers whose users are all inside."""
    owner, groups = {}, []
    for node in reversed(graph.nodes):
        if node in owner or not _fusable(node):
            continue
        group, domain, work = {node}, _domain(node), [node]
        while work:
            member = work.pop()
            for v in member.inputs:
                p = v.producer
                if p in owner or p in group or not _fusable(p) or p.op in REDUCE_OPS:
                    continue
                if p.outputs[0].type.shape != domain or not _users_inside(p, group, node.op not in REDUCE_OPS):
                    continue
                group.add(p)
                work.append(p)
        for m in group:
            owner[m] = len(groups)
        groups.append(group)
    order = {n: i for i, n in enumerate(graph.nodes)}
    return [sorted(grp, key=order.get) for grp in reversed(groups)]


def _users_inside(node, group, outputs_ok):
    """Every reader is in the group; with `outputs_ok` (elementwise groups) the graph's output node may read it too,
    and the group simply writes it as one more output (an optimizer's new momentum buffer, say)."""
    return all(u in group or (outputs_ok and u.op == "output") for v in node.outputs for u in v.users)


# ---- building the fused node --------------------------------------------------------------------------------------
class _Builder:
    """Collects loads (with their strided Access), statements and external inputs of one group."""

    def __init__(self, members, domain):
        self.members, self.domain = set(members), domain
        self.inputs, self.reads, self.body, self.vars, self.dtypes = [], [], [], {}, {}

    def var(self, value):
        """The scalar variable holding `value` at the current domain index (loading it if external)."""
        if value in self.vars:
            return self.vars[value]
        if value.producer in self.members:
            raise RuntimeError(f"fuse: {value!r} used before its statement")
        base, access = _access(value, self.domain)
        name = f"v{len(self.body)}"
        if base.producer.op == "constant" and not base.type.shape:
            self.body.append(Stmt(name, "const", (base.producer.attrs["value"].item(),)))
        else:
            if base not in self.inputs:
                self.inputs.append(base)
            buf = f"in{self.inputs.index(base)}"
            self.dtypes[buf] = base.type.dtype.name
            self.reads.append(Access(buf, access[0], access[1]))
            self.body.append(Stmt(name, "load", (len(self.reads) - 1,)))
        self.dtypes[name] = value.type.dtype.name
        self.vars[value] = name
        return name

    def stmt(self, node):
        args = tuple(self.var(v) for v in node.inputs)
        name = f"v{len(self.body)}"
        attrs = tuple(sorted(node.attrs.items()))
        self.body.append(Stmt(name, node.op, args, attrs))
        self.dtypes[name] = node.outputs[0].type.dtype.name
        self.vars[node.outputs[0]] = name
        return name


def _access(value, domain):
    """The contiguous base buffer under a chain of views, and (strides over `domain`, offset) to read `value`."""
    chain = []
    while value.producer.op in VIEW_OPS:
        chain.append(value.producer)
        value = value.producer.inputs[0]
    shape, strides, offset = value.type.shape, contiguous_strides(value.type.shape), 0
    for node in reversed(chain):
        shape, strides, offset = _apply_view(node, shape, strides, offset)
    lead = len(domain) - len(shape)
    return value, ((0,) * lead + tuple(0 if n == 1 else s for n, s in zip(shape, strides)), offset)


def _apply_view(node, shape, strides, offset):
    op, attrs, out_shape = node.op, node.attrs, node.outputs[0].type.shape
    if op == "permute":
        return out_shape, tuple(strides[d] for d in attrs["dims"]), offset
    if op == "expand":
        lead = len(out_shape) - len(shape)
        return out_shape, (0,) * lead + tuple(0 if n == 1 else s for n, s in zip(shape, strides)), offset
    if op == "reshape":
        if strides != contiguous_strides(shape) and any(n != 1 for n in shape):
            raise _UnfoldableViewError(node)
        return out_shape, contiguous_strides(out_shape), offset
    return _getitem_view(node, shape, strides, offset)


def _getitem_view(node, shape, strides, offset):
    """Basic indexing (ints, slices, None; negative ints and bounds resolved against `shape`) as strides."""
    index, _ = basic_index(shape, node.attrs["index"])
    new_strides, d = [], 0
    for item in index:
        if item is Ellipsis:
            break
        if item is None:
            new_strides.append(0)
            continue
        if isinstance(item, slice):
            start, _, step = item.indices(shape[d])
            new_strides.append(strides[d] * step)
        else:
            start = item % shape[d]
        offset += start * strides[d]
        d += 1
    new_strides.extend(strides[d:])
    return node.outputs[0].type.shape, tuple(new_strides), offset


class _UnfoldableViewError(Exception):
    """A view chain that strides cannot express (e.g. reshape of a permuted tensor)."""


def _replace_group(graph, members, order):
    """Swap `members` for one fused node (or leave them alone if a view in front cannot be folded)."""
    root = members[-1]
    member_set = set(members)
    fronts = [v for m in members for v in m.inputs if v.producer not in member_set]
    domain = _domain(root)
    b = _Builder(members, domain)
    try:
        for node in members:
            b.stmt(node) if node is not root or root.op not in REDUCE_OPS else b.var(node.inputs[0])
    except _UnfoldableViewError:
        return
    escaping = [n.outputs[0] for n in members if any(u not in b.members for u in n.outputs[0].users)]
    if not escaping:
        for m in reversed(members):
            graph.erase_node(m)
        return
    kernel = _kernel(root, b, escaping, domain)
    sub = _subgraph(graph, members, b.inputs, escaping, order)
    node = graph.add_node("fused", list(b.inputs), {"subgraph": sub, "kernel": kernel},
                          [v.type for v in escaping], meta={"members": [n.op for n in members]}, before=root)
    for old, new in zip(escaping, node.outputs):
        graph.replace_all_uses(old, new)
    for m in reversed(members):
        graph.erase_node(m)
    _drop_dead_fronts(graph, fronts)


def _kernel(root, b, escaping, domain):
    outputs = [f"out{i}" for i in range(len(escaping))]
    dtypes = dict(b.dtypes)
    dtypes.update({o: v.type.dtype.name for o, v in zip(outputs, escaping)})
    if root.op not in REDUCE_OPS:
        return LoopKernel("loop", domain, [f"in{i}" for i in range(len(b.inputs))], outputs, dtypes, b.body,
                          [b.vars[v] for v in escaping], b.reads)
    src = root.inputs[0].type.shape
    axes = _reduce_axes(root, src)
    post = [Stmt("mean", "div", ("acc", "count"))] if root.op == "mean" else []  # count: see cpu.post_lines
    result = b.vars[root.inputs[0]]
    return LoopKernel("reduce", domain, [f"in{i}" for i in range(len(b.inputs))], outputs, dtypes, b.body, [result],
                      b.reads, reduce_axes=axes, reduce_op=REDUCE_OPS[root.op], post=post)


def _reduce_axes(node, src):
    if node.op == "sum_to":
        shape = node.attrs["shape"]
        lead = len(src) - len(shape)
        return tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and src[lead + i] != 1)
    return norm_dims(node.op, node.attrs.get("dims"), len(src))


def _subgraph(graph, members, inputs, escaping, order):
    """The group (and the views in front of it) as a standalone Graph, for the interpreter oracle."""
    sub, vmap = Graph(), {}
    for i, v in enumerate(inputs):
        vmap[v] = sub.add_input(v.type, f"in{i}")
    needed, work = [], list(members)
    member_set = set(members)
    while work:
        n = work.pop()
        for v in n.inputs:
            if v not in vmap and v.producer not in member_set and v.producer not in needed:
                needed.append(v.producer)
                work.append(v.producer)
    if any(n not in order for n in needed):  # a fused node made from an earlier group: renumber
        order.clear()
        order.update((n, i) for i, n in enumerate(graph.nodes))
    for n in sorted(needed + list(members), key=order.get):
        if n.op == "constant":
            vmap[n.outputs[0]] = sub.add_constant(n.attrs["value"])
            continue
        new = sub.add_node(n.op, [vmap[v] for v in n.inputs], n.attrs, [v.type for v in n.outputs])
        vmap.update(zip(n.outputs, new.outputs))
    sub.set_outputs([vmap[v] for v in escaping])
    return sub


def _drop_dead_fronts(graph, fronts):
    """Erase the view and constant nodes that only fed the group (their readers were just replaced)."""
    for v in fronts:
        node = v.producer
        while node.op in VIEW_OPS or node.op == "constant":
            if any(o.users for o in node.outputs) or node.graph is None:
                break
            up = node.inputs[0].producer if node.inputs else None
            graph.erase_node(node)
            if up is None:
                break
            node = up
