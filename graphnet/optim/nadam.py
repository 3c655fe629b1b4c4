"""NAdam: Adam with Nesterov momentum and the momentum-decay schedule of Dozat (2016)."""
from ..core import dtype as dt
from ..frontend.creation import tensor, zeros_like
from .optimizer import PerParamOptimizer, addcmul_, check_adam_family, check_range, lerp_


class NAdam(PerParamOptimizer):
    """PyTorch's NAdam: mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)); the step mixes the gradient and the
    first moment by mu_t and mu_{t+1} over the running product of the mu's (a 0-d state tensor, 'mu_product')."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        check_adam_family(lr, betas, eps, weight_decay)
        check_range("momentum_decay", momentum_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def init_state(self, p, group):
        return {"step": tensor(0.0), "mu_product": tensor(1.0), "exp_avg": zeros_like(p), "exp_avg_sq": zeros_like(p)}

    def update(self, p, grad, state, group, hypers):
        """The schedule stays float64 tensors of the step count, so a compiled step traces it."""
        lr, (beta1, beta2), decay = hypers["lr"], hypers["betas"], hypers["momentum_decay"]
        step = state["step"].add_(1).to(dt.float64)
        if group["decoupled_weight_decay"] and group["weight_decay"] != 0:
            p.mul_(1 - lr * hypers["weight_decay"])
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * decay))
        mu_product = state["mu_product"].mul_(mu).to(dt.float64)
        exp_avg = lerp_(state["exp_avg"], grad, 1 - beta1)
        exp_avg_sq = addcmul_(state["exp_avg_sq"].mul_(beta2), grad, grad, value=1 - beta2)
        denom = (exp_avg_sq / (1 - beta2 ** step)).sqrt().add_(hypers["eps"])
        p.add_(grad / denom, alpha=-lr * (1.0 - mu) / (1.0 - mu_product))
        p.add_(exp_avg / denom, alpha=-lr * mu_next / (1.0 - mu_product * mu_next))
