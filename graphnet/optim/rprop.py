"""Rprop (resilient backpropagation): per-element step sizes grown or shrunk by the sign agreement of gradients."""
from ..frontend.api_elementwise import maximum, minimum, where
from ..frontend.creation import full_like, tensor, zeros_like
from .optimizer import PerParamOptimizer


class Rprop(PerParamOptimizer):
    """PyTorch's Rprop: where g * prev > 0 the step size grows by etas[1], where < 0 it shrinks by etas[0] (and that
    element skips its move and forgets g), clamped to step_sizes; p -= sign(g) * step_size. Tensor-only, so it runs
    inside graphnet.compile with etas and step_sizes as runtime inputs."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def init_state(self, p, group):
        return {"step": tensor(0.0), "prev": zeros_like(p), "step_size": full_like(p, float(group["lr"]))}

    def update(self, p, grad, state, group, hypers):
        (etaminus, etaplus), (size_min, size_max) = hypers["etas"], hypers["step_sizes"]
        state["step"].add_(1)
        agreement = (grad * state["prev"]).sign()
        one = full_like(grad, 1.0)  # the factors in the parameter's dtype (scalars would give the default dtype)
        factor = where(agreement > 0, one * etaplus, where(agreement < 0, one * etaminus, one))
        step_size = state["step_size"]
        step_size.copy_(minimum(maximum(step_size * factor, size_min), size_max))
        grad = where(agreement < 0, 0.0, grad)
        p.add_(grad.sign() * step_size, alpha=-1)
        state["prev"].copy_(grad)
