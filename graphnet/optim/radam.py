"""RAdam: Adam whose adaptive term is switched on, rectified, once the variance estimate is tractable."""
from ..core import dtype as dt
from ..frontend.api_elementwise import where
from ..frontend.creation import tensor, zeros_like
from .optimizer import PerParamOptimizer, addcmul_, check_adam_family, lerp_


class RAdam(PerParamOptimizer):
    """PyTorch's RAdam: p -= lr * m / (1 - beta1^t) * (r_t * sqrt(1 - beta2^t) / (sqrt(v) + eps) if rho_t > 5
    else 1)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        check_adam_family(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def init_state(self, p, group):
        return {"step": tensor(0.0), "exp_avg": zeros_like(p), "exp_avg_sq": zeros_like(p)}

    def update(self, p, grad, state, group, hypers):
        """The rho_t > 5 branch is a `where` on float64 tensors of the step count (PyTorch's capturable form), so one
        compiled step is right on both sides of the threshold."""
        lr, (beta1, beta2) = hypers["lr"], hypers["betas"]
        step = state["step"].add_(1).to(dt.float64)
        if group["decoupled_weight_decay"] and group["weight_decay"] != 0:
            p.mul_(1 - lr * hypers["weight_decay"])
        exp_avg = lerp_(state["exp_avg"], grad, 1 - beta1)
        exp_avg_sq = addcmul_(state["exp_avg_sq"].mul_(beta2), grad, grad, value=1 - beta2)
        bias_correction2 = 1 - beta2 ** step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * beta2 ** step / bias_correction2
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)).clamp(min=0).sqrt()
        adaptive = bias_correction2.sqrt() / exp_avg_sq.sqrt().add_(hypers["eps"])
        update = where(rho_t > 5.0, adaptive * rect, 1.0)
        p.sub_(exp_avg / (1 - beta1 ** step) * lr * update)
