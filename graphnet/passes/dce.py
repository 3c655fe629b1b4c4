"""dce: remove compute nodes whose results nobody reads (graph outputs and write-backs count as readers)."""


def dce(graph):
    """A copy of `graph` without dead compute nodes; graph inputs are kept (they are the calling convention)."""
    out = graph.copy()
    out.meta["dce"] = {"removed": eliminate_dead(out)}
    return out


def eliminate_dead(graph, keep=lambda node: False):
    """Erase dead compute and constant nodes in place (one reverse sweep); returns how many were removed."""
    removed = 0
    for node in reversed(graph.nodes):
        if node.op in ("input", "output") or keep(node):
            continue
        if not any(v.users for v in node.outputs):
            graph.erase_node(node)
            removed += 1
    return removed
