"""plan_memory: liveness over the schedule, one arena with reused offsets, and in-place writes where safe.

Every value computed by a kernel gets `meta['buffer'] = (offset, nbytes)` in a single arena, or `meta['inplace'] =`
the input Value whose storage it overwrites. Views (reshape/permute/expand/basic getitem) alias their base and
extend its lifetime. Graph outputs are written into fresh arrays the caller then owns (`meta['fresh']`), so
nothing is copied out of the arena; write-back values are never reused. An elementwise fused kernel may write
over an input it reads with the identity access when that read is the input's last use — including a 'state' or
'param' graph input whose write-back is exactly this value (an optimizer update lands in the live tensor).
"""
from ..ir.kernel import contiguous_strides
from .fuse import VIEW_OPS

ALIGN = 64


def plan_memory(graph):
    """A copy of `graph` annotated with buffer offsets; meta['plan_memory'] reports peak bytes before/after."""
    g = graph.copy()
    order = [n for n in g.nodes if n.op not in ("input", "constant", "output")]
    base = _bases(g)
    last = _last_uses(order, base)
    pinned = {base[v] for v in g.outputs} | {base[wb.value] for wb in g.writebacks}
    writeback_target = {wb.value: wb.target for wb in g.writebacks if wb.kind == "data"}
    returned = set(g.outputs)
    live, arena_peak, naive = [], 0, 0
    for step, node in enumerate(order):
        live = [(v, off, size) for v, off, size in live if last.get(v, -1) >= step or v in pinned]
        if node.op in VIEW_OPS:
            continue
        taken = set()  # inputs already overwritten by another output of this node
        for v in node.outputs:
            naive += _nbytes(v)
            target = _inplace_candidate(node, v, step, last, pinned, base, writeback_target, taken)
            if target is not None:
                taken.add(target)
                v.producer.meta.setdefault("inplace", {})[v.index] = target.name
                live = [(v if b is target else b, off, size) for b, off, size in live]
                continue
            if v in returned:  # handed to the caller: written straight into a fresh array it will own
                node.meta.setdefault("fresh", set()).add(v.index)
                continue
            off = _first_fit(live, _aligned(_nbytes(v)))
            live.append((v, off, _aligned(_nbytes(v))))
            v.producer.meta.setdefault("buffers", {})[v.index] = (off, _nbytes(v))
            arena_peak = max(arena_peak, off + _aligned(_nbytes(v)))
    g.meta["plan_memory"] = {"peak_bytes_before": naive, "peak_bytes_after": arena_peak, "arena_bytes": arena_peak}
    return g


def _nbytes(v):
    return v.type.numel * v.type.dtype.itemsize


def _aligned(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _bases(graph):
    """Value -> the value owning its storage (itself, or the base under a chain of views)."""
    base = {}
    for node in graph.nodes:
        for v in node.outputs:
            base[v] = base[node.inputs[0]] if node.op in VIEW_OPS else v
    return base


def _last_uses(order, base):
    """Buffer-owning value -> index (in `order`) of the last step reading it, directly or through a view."""
    pos = {n: i for i, n in enumerate(order)}
    last = {}
    for node in order:
        for v in node.inputs:
            b = base[v]
            last[b] = max(last.get(b, -1), pos[node])
    return last


def _first_fit(live, size):
    """The lowest arena offset with `size` free bytes between the live blocks."""
    cursor = 0
    for _, off, sz in sorted(live, key=lambda x: x[1]):
        if off - cursor >= size:
            return cursor
        cursor = max(cursor, off + sz)
    return cursor


def _inplace_candidate(node, out, step, last, pinned, base, writeback_target, taken):
    """An input this elementwise kernel may overwrite with `out` (same size/dtype, identity read, last use). In a
    horizontal kernel no other member may read its storage (directly or through a view): they may run after it."""
    kernel = node.attrs.get("kernel") if node.op == "fused" else None
    if kernel is None or kernel.is_reduction:
        return None
    member = kernel.member_of(f"out{out.index}")
    others = {base[node.inputs[int(a.buffer[2:])]] for m in kernel.members if m is not member for a in m.reads}
    identity = contiguous_strides(member.domain)
    for i, v in enumerate(node.inputs):
        if v in taken or base[v] is not v or v.type != out.type or last.get(v) != step or v in others:
            continue
        reads = [a for a in member.reads if a.buffer == f"in{i}"]
        if not reads or any(a.strides != identity or a.offset for a in reads):
            continue
        if v.producer.op == "input":
            if writeback_target.get(out) is not v:
                continue
        elif v in pinned or v.producer.op == "constant":
            continue
        return v
    return None
