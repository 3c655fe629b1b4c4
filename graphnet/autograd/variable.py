"""The legacy `Variable(t, requires_grad=..., volatile=...)` of early PyTorch.

A volatile input makes every result computed from it non-grad with `grad_fn is None`, and nothing is saved for
backward: the eager face of the dead-gradient pruning the compiler does on graphs.
"""
from ..frontend.tensor import Tensor


def Variable(data, requires_grad=False, volatile=False):  # noqa: N802 - the legacy constructor's name
    """Wrap `data` (a tensor) as a leaf sharing its storage; a Variable is just a Tensor nowadays."""
    if not isinstance(data, Tensor):
        raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
    if requires_grad and volatile:
        raise ValueError("Variable: volatile and requires_grad=True contradict each other; pick one")
    out = data.detach()
    out._base = None
    out._volatile = bool(volatile)
    out.requires_grad = requires_grad
    return out
