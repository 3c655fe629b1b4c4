"""autodiff: forward graph -> joint forward+backward graph, built from the ops' own gradient rules.

The rules are the ones eager autograd runs (`OpDef.grad`, written with `op.<name>` calls); here they run on the
graph's Values under an `ir.builder.GraphBuilder`, so each `op.<name>` call appends a backward node. The rule sees the
same GradContext as in eager mode: saved inputs/outputs only, and `needs_input_grad` from requires-grad propagation.

Joint graph contract (graph.meta['autodiff']):
  n_forward_outputs   the original outputs come first, then one gradient output per `wrt` input
  grads               {wrt input name: output index}
Every node carries meta['phase'] = 'forward' or 'backward'.
"""
import numpy as np

from ..core.bind import bind
from ..core.opdef import GradContext
from ..ir.builder import GraphBuilder
from ..ir.graph import Graph


def _resolve(graph, wrt):
    """Inputs to differentiate with respect to: names/Values, or by default every input flagged requires_grad."""
    if wrt is None:
        return [v for v in graph.inputs if v.producer.meta.get("requires_grad") and v.dtype.is_floating_point]
    return [graph.input(w if isinstance(w, str) else w.name) for w in wrt]


def requires_grad_values(graph, sources):
    """Values whose gradient depends on `sources`: a forward requires-grad propagation over differentiable ops."""
    need = set(sources)
    for node in graph.nodes:
        if node.op in ("input", "constant", "output"):
            continue
        if node.opdef.grad is not None and any(v in need for v in node.inputs):
            need.update(v for v in node.outputs if v.dtype.is_floating_point)
    return need


def _seed(graph, value, as_input):
    """d(output)/d(output): a 'grad_output' input, or a constant 1 for a single-element output unless `as_input`."""
    if value.type.numel == 1 and not as_input:
        return graph.add_constant(np.ones(value.shape, value.dtype.np), name="one")
    return graph.add_input(value.type, f"grad_{value.name}", "grad_output")


def _accumulate(grads, value, g):
    grads[value] = g if value not in grads else bind("add", grads[value], g)


def _backward_node(builder, node, grads, need):
    """Run `node`'s gradient rule on its Values, adding its input gradients into `grads`."""
    opdef = node.opdef
    g_out = [grads.get(v) for v in node.outputs]
    needs = tuple(v in need for v in node.inputs)
    if all(g is None for g in g_out) or not any(needs) or opdef.grad is None:
        return
    saved = opdef.saved_inputs(needs)
    ctx = GradContext([v if i in saved else None for i, v in enumerate(node.inputs)],
                      [v if j in opdef.save_outputs else None for j, v in enumerate(node.outputs)],
                      [v.type for v in node.inputs], [v.type for v in node.outputs], dict(node.attrs), needs)
    builder.meta = {"source": node.meta["source"]} if "source" in node.meta else {}
    result = opdef.grad(ctx, *g_out)
    if len(result) != len(node.inputs):
        raise RuntimeError(f"autodiff: gradient rule of {node.op} returned {len(result)} gradients for "
                           f"{len(node.inputs)} inputs")
    for v, g, wanted in zip(node.inputs, result, needs):
        if g is not None and wanted:
            _accumulate(grads, v, g)


def autodiff(graph, wrt=None, outputs=None, seed_inputs=False):
    """The joint graph: forward, then the gradients of `outputs` (default: output 0) w.r.t. `wrt` inputs.

    A single-element output is seeded with 1 (a loss) unless `seed_inputs`: then every output takes its incoming
    gradient as a 'grad_output' input, as a compiled module's backward must (its caller may scale the output)."""
    joint, vmap = graph.copy_with_map()
    for n in joint.nodes:
        n.meta["phase"] = "forward"
    fwd_outputs = joint.outputs
    targets = [fwd_outputs[i] for i in (outputs if outputs is not None else [0])]
    sources = _resolve(joint, wrt)
    need = requires_grad_values(joint, sources)
    first_new = joint.output_node._prev
    grads = {t: _seed(joint, t, seed_inputs) for t in targets}
    with GraphBuilder(joint) as builder:
        for node in reversed([n for n in joint.nodes if n.meta.get("phase") == "forward"]):
            if node.op not in ("input", "constant", "output"):
                _backward_node(builder, node, grads, need)
    grad_values = [grads[s] if s in grads else _zeros(joint, s) for s in sources]
    _mark_backward(joint, first_new)
    joint.set_outputs(fwd_outputs + grad_values, [(w.value, w.target, w.kind) for w in joint.writebacks])
    joint.meta["autodiff"] = {"n_forward_outputs": len(fwd_outputs),
                              "grads": {s.name: len(fwd_outputs) + i for i, s in enumerate(sources)}}
    return joint


def _zeros(graph, value):
    """The gradient of an input no requested output depends on (PyTorch would give None; a graph needs a value)."""
    return graph.add_constant(np.broadcast_to(np.zeros((), value.dtype.np), value.shape), name=f"zero_{value.name}")


def _mark_backward(graph, first_new):
    """Nodes added by the backward sweep (sources anywhere, compute nodes after `first_new`) are 'backward'."""
    for n in graph.nodes:
        n.meta.setdefault("phase", "backward")
    n = first_new._next
    while n is not graph._root and n.op != "output":
        n.meta["phase"] = "backward"
        n = n._next


def saved_values(graph):
    """Forward values (inputs or computed, not constants) that backward nodes or gradient outputs read."""
    out = {}
    info = graph.meta.get("autodiff", {})
    grad_outputs = graph.outputs[info.get("n_forward_outputs", len(graph.outputs)):]
    readers = [v for n in graph.nodes if n.meta.get("phase") == "backward" for v in n.inputs] + grad_outputs
    for v in readers:
        if v.producer.meta.get("phase") == "forward" and v.producer.op != "constant":
            out[v] = None
    return list(out)


def split(joint):
    """(forward, backward) graphs from a joint graph. The forward graph returns the original outputs followed by
    the saved values; the backward graph takes those ('saved' inputs, same names) plus the 'grad_output' inputs
    and returns the gradients. meta['saved'] on both lists the saved value names in order."""
    n_fwd = joint.meta["autodiff"]["n_forward_outputs"]
    saved = saved_values(joint)
    fwd_nodes = [n for n in joint.nodes if n.meta.get("phase") == "forward" and n.op != "output"]
    bwd_nodes = [n for n in joint.nodes if n.meta.get("phase") == "backward" and n.op != "output"]
    used_consts = {v.producer for n in bwd_nodes for v in n.inputs if v.producer.op == "constant"}
    bwd_nodes = [n for n in fwd_nodes if n in used_consts] + bwd_nodes
    fwd = _extract(fwd_nodes, [], joint.outputs[:n_fwd] + saved, joint.writebacks)
    bwd = _extract(bwd_nodes, saved, joint.outputs[n_fwd:], [])
    for g in (fwd, bwd):
        g.meta["saved"] = [v.name for v in saved]
    bwd.meta["grads"] = {k: i - n_fwd for k, i in joint.meta["autodiff"]["grads"].items()}
    return fwd, bwd


def _extract(nodes, boundary, outputs, writebacks):
    """A new graph of copies of `nodes`; `boundary` values become 'saved' inputs."""
    g, vmap = Graph(), {}
    for v in boundary:
        vmap[v] = g.add_input(v.type, v.name, "saved")
    for n in nodes:
        if n.op == "input":
            new = g.add_input(n.out.type, n.out.name, n.attrs["role"], n.attrs["target"], n.meta)
        elif n.op == "constant":
            new = g.add_constant(n.attrs["value"], n.out.name, n.meta)
        else:
            new = g.add_node(n.op, [vmap[v] for v in n.inputs], n.attrs, [v.type for v in n.outputs], n.meta)
            new = new.outputs
        vmap.update(zip(n.outputs, new if isinstance(new, list) else [new]))
    g.set_outputs([vmap[v] for v in outputs], [(vmap[v], vmap[t], k) for v, t, k in writebacks])
    return g
