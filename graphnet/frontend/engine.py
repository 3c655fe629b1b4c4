"""The backward engine: walks the Function graph in dependency order (iteratively), running gradient rules."""
from collections import deque

from .autograd import AccumulateGrad, gradient_edge, set_grad_enabled


def _dependencies(roots):
    """Count, for every reachable node, how many edges point at it (an iterative walk, no recursion)."""
    deps, seen, stack = {}, set(), [n for n in roots]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for child, _ in node.next_functions:
            if child is not None:
                deps[child] = deps.get(child, 0) + 1
                stack.append(child)
    return deps


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _run_hooks(hooks, grad):
    for hook in hooks:
        result = hook(grad)
        if result is not None:
            grad = result
    return grad


def run_backward(tensors, grads, retain_graph=False, create_graph=False, inputs=None, accumulate=True):
    """Propagate `grads` from `tensors` back through the graph.

    accumulate=True adds into leaves' `.grad` (all leaves, or only `inputs` when given); accumulate=False returns
    the gradients of `inputs` instead (autograd.grad).
    """
    captures = {}
    if inputs is not None:
        for i, t in enumerate(inputs):
            if not t.requires_grad:
                raise RuntimeError(f"One of the differentiated Tensors (input {i}) does not require grad")
            captures.setdefault(gradient_edge(t), []).append(i)
    results = [None] * (len(inputs) if inputs is not None else 0)

    roots, buffers = [], {}
    for t, g in zip(tensors, grads):
        if not t.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        node, nr = gradient_edge(t)
        buf = buffers.setdefault(node, [None] * _n_outputs(node))
        buf[nr] = _add(buf[nr], g)
        roots.append(node)
    deps = _dependencies(roots)
    ready = deque(n for n in dict.fromkeys(roots) if deps.get(n, 0) == 0)

    with set_grad_enabled(create_graph):
        while ready:
            node = ready.popleft()
            grad_outputs = buffers.pop(node, None) or [None] * _n_outputs(node)
            grad_outputs = [_run_hooks(h, g) if g is not None else g
                            for h, g in zip(_output_hooks(node), grad_outputs)]
            for nr, g in enumerate(grad_outputs):
                for i in captures.get((node, nr), ()):
                    results[i] = g
            if isinstance(node, AccumulateGrad):
                if accumulate and grad_outputs[0] is not None and (inputs is None or (node, 0) in captures):
                    _accumulate(node.variable, grad_outputs[0], create_graph)
                continue
            grad_inputs = _apply(node, grad_outputs, retain_graph)
            for (child, nr), g in zip(node.next_functions, grad_inputs):
                if child is None:
                    continue
                if g is not None:
                    buf = buffers.setdefault(child, [None] * _n_outputs(child))
                    buf[nr] = _add(buf[nr], g)
                deps[child] -= 1
                if deps[child] == 0:
                    ready.append(child)
    return results


def _apply(node, grad_outputs, retain_graph):
    for hook in node._pre_hooks:
        result = hook(tuple(grad_outputs))
        if result is not None:
            grad_outputs = list(result)
    if all(g is None for g in grad_outputs):
        grad_inputs = (None,) * len(node.next_functions)
    else:
        grad_inputs = node.apply(grad_outputs)
    for hook in node._post_hooks:
        result = hook(tuple(grad_inputs), tuple(grad_outputs))
        if result is not None:
            grad_inputs = tuple(result)
    if not retain_graph:
        node.release()
    return grad_inputs


def _n_outputs(node):
    return 1 if isinstance(node, AccumulateGrad) else len(node.out_types)


def _output_hooks(node):
    """Tensor hooks per output: a leaf's own hooks, or those registered on a non-leaf's grad_fn output."""
    if isinstance(node, AccumulateGrad):
        return [node.variable._hooks or ()]
    hooks = node._out_hooks or {}
    return [hooks.get(nr, ()) for nr in range(len(node.out_types))]


def _accumulate(leaf, grad, create_graph):
    """Add into `.grad`: the first gradient is copied (it may be shared), later ones add in place."""
    if leaf.grad is None:
        leaf.grad = grad if create_graph else grad.detach().clone()
    elif create_graph:
        leaf.grad = leaf.grad + grad
    else:
        leaf.grad.data.add_(grad.detach())
