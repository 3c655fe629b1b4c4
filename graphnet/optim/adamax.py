"""Adamax: Adam with the infinity norm, u = max(beta2 * u, |g| + eps), in place of the second moment."""
from ..core import dtype as dt
from ..frontend.api_elementwise import maximum
from ..frontend.creation import tensor, zeros_like
from .optimizer import PerParamOptimizer, addcdiv_, check_adam_family, lerp_


class Adamax(PerParamOptimizer):
    """PyTorch's Adamax: m = lerp(m, g, 1 - beta1); u = max(beta2 * u, |g| + eps); p -= lr / (1 - beta1^t) * m / u."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        check_adam_family(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def init_state(self, p, group):
        return {"step": tensor(0.0), "exp_avg": zeros_like(p), "exp_inf": zeros_like(p)}

    def update(self, p, grad, state, group, hypers):
        (beta1, beta2), step = hypers["betas"], state["step"].add_(1).to(dt.float64)
        exp_avg, exp_inf = lerp_(state["exp_avg"], grad, 1 - beta1), state["exp_inf"]
        exp_inf.copy_(maximum(exp_inf.mul_(beta2), grad.abs().add_(hypers["eps"])))
        addcdiv_(p, exp_avg, exp_inf, value=-hypers["lr"] / (1 - beta1 ** step))
