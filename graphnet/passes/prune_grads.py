"""prune_grads: keep only the gradient work that reaches a requested gradient (dead-grad elimination).

On a joint graph from `autodiff`, gradients that are not requested (frozen parameters, plain inputs) are dropped
from the outputs and every backward node that then reaches no requested gradient is removed; with no gradients
requested the result is a pure inference graph that keeps no saved activations. The report is stored in
graph.meta['prune_grads']: nodes_removed, saved_before/saved_after (value names), saved_bytes_avoided.
"""
from .autodiff import saved_values
from .dce import eliminate_dead


def _requested(graph, requested):
    grads = graph.meta["autodiff"]["grads"]
    if requested is None:
        return [name for name in grads if graph.input(name).producer.meta.get("requires_grad")]
    unknown = [r for r in requested if r not in grads]
    if unknown:
        raise ValueError(f"prune_grads: no gradient for {unknown} in this graph; it has gradients for {list(grads)}")
    return list(requested)


def prune_grads(graph, requested=None):
    """A copy of joint `graph` computing only the gradients named in `requested` (default: inputs that require
    grad); outputs are the forward outputs followed by the kept gradients, in `requested` order."""
    if "autodiff" not in graph.meta:
        raise ValueError("prune_grads: expected a joint graph from passes.autodiff (graph.meta['autodiff'] missing)")
    before = saved_values(graph)
    out = graph.copy()
    info = out.meta["autodiff"]
    keep = _requested(out, requested)
    n_fwd = info["n_forward_outputs"]
    outputs = out.outputs
    kept = [outputs[info["grads"][name]] for name in keep]
    out.set_outputs(outputs[:n_fwd] + kept, [(w.value, w.target, w.kind) for w in out.writebacks])
    removed = eliminate_dead(out, keep=lambda n: n.meta.get("phase") != "backward")
    _drop_unused_grad_inputs(out)
    out.meta["autodiff"] = {"n_forward_outputs": n_fwd, "grads": {name: n_fwd + i for i, name in enumerate(keep)}}
    after = saved_values(out)
    out.meta["prune_grads"] = {"nodes_removed": removed, "saved_before": [v.name for v in before],
                               "saved_after": [v.name for v in after],
                               "saved_bytes_avoided": sum(v.type.nbytes for v in before) -
                               sum(v.type.nbytes for v in after)}
    return out


def _drop_unused_grad_inputs(graph):
    """grad_output seeds that no backward node reads any more are removed from the calling convention."""
    for v in graph.inputs_by_role("grad_output"):
        if not v.users:
            graph.erase_node(v.producer)
