"""Gradient clipping, written with tensor ops only, so it runs inside a compiled training step (no host reads)."""
import math

from ...frontend.api_movement import stack
from ...frontend.autograd import no_grad
from ...frontend.creation import tensor
from ...frontend.tensor import Tensor


def _grads(parameters):
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in params if p.grad is not None]


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients in place so their joint `norm_type`-norm is at most max_norm; returns the total norm
    (before clipping), as PyTorch: scale = min(1, max_norm / (total + 1e-6))."""
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return tensor(0.0)
    if norm_type == math.inf:
        total = stack([g.abs().max() for g in grads]).max()
    else:
        total = stack([g.norm(norm_type) for g in grads]).norm(norm_type)
    if error_if_nonfinite and total._proxy is None and not math.isfinite(total.item()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    scale = (float(max_norm) / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype))
    return total


@no_grad()
def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(-clip_value, clip_value)
