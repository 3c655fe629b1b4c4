"""Adam and AdamW (decoupled weight decay), with PyTorch's bias correction, amsgrad and maximize."""
from ..core import dtype as dt
from ..frontend.api_elementwise import maximum
from ..frontend.creation import tensor, zeros_like
from .optimizer import PerParamOptimizer, addcmul_, check_adam_family, check_fused, lerp_


class Adam(PerParamOptimizer):
    """PyTorch's Adam: moment estimates m, v with bias correction; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
    foreach, capturable, differentiable and fused are accepted and stored; every choice runs graphnet's one path."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        check_adam_family(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
        check_fused(fused, foreach, differentiable)

    def init_state(self, p, group):
        state = {"step": tensor(0.0), "exp_avg": zeros_like(p), "exp_avg_sq": zeros_like(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_like(p)
        return state

    def update(self, p, grad, state, group, hypers):
        """The bias corrections stay float64 tensors (PyTorch's capturable form, its Python-float precision), so a
        compiled step traces them."""
        lr, (beta1, beta2), eps = hypers["lr"], hypers["betas"], hypers["eps"]
        step = state["step"].add_(1).to(dt.float64)
        if group["decoupled_weight_decay"] and group["weight_decay"] != 0:
            p.mul_(1 - lr * hypers["weight_decay"])
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        lerp_(exp_avg, grad, 1 - beta1)
        addcmul_(exp_avg_sq.mul_(beta2), grad, grad, value=1 - beta2)
        bias_correction2_sqrt = (1 - beta2 ** step).sqrt()
        if group["amsgrad"]:
            max_sq = state["max_exp_avg_sq"]
            exp_avg_sq = max_sq.copy_(maximum(max_sq, exp_avg_sq))
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        p.sub_(exp_avg / denom * (lr / (1 - beta1 ** step)))


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam step (default decay 1e-2)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
