"""`graphnet.autograd.grad` and `backward`: the engine's functional entry points."""
import numpy as np

from ..frontend.engine import run_backward
from ..frontend.tensor import Tensor


def _as_list(x):
    return [x] if isinstance(x, Tensor) else list(x)


def _default_grads(outputs, grad_outputs):
    grads = [None] * len(outputs) if grad_outputs is None else _as_list(grad_outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"grad_outputs has {len(grads)} entries but there are {len(outputs)} outputs")
    out = []
    for o, g in zip(outputs, grads):
        if g is None:
            if o.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs; pass grad_outputs")
            g = Tensor._wrap(np.ones(o.shape, o.dtype.np), o.dtype, o.device)
        out.append(g)
    return out


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs`, returned as a tuple (nothing is accumulated)."""
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    grads = _default_grads(outputs, grad_outputs)
    retain = create_graph if retain_graph is None else retain_graph
    results = run_backward(outputs, grads, retain, create_graph, inputs=inputs, accumulate=False)
    for i, (r, t) in enumerate(zip(results, inputs)):
        if r is None:
            if materialize_grads:
                results[i] = Tensor._wrap(np.zeros(t.shape, t.dtype.np), t.dtype, t.device)
            elif not allow_unused:
                raise RuntimeError(f"One of the differentiated Tensors (input {i}) appears to not have been used in "
                                   "the graph. Set allow_unused=True if this is the desired behavior.")
    return tuple(results)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of `tensors` into the leaves' `.grad`."""
    tensors = _as_list(tensors)
    grads = _default_grads(tensors, grad_tensors)
    retain = create_graph if retain_graph is None else retain_graph
    run_backward(tensors, grads, retain, create_graph, inputs=None if inputs is None else _as_list(inputs))
