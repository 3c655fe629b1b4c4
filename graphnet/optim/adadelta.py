"""Adadelta: steps scaled by the ratio of running RMS of past updates to running RMS of gradients."""
from ..frontend.creation import tensor, zeros_like
from .optimizer import PerParamOptimizer, addcmul_, check_range


class Adadelta(PerParamOptimizer):
    """PyTorch's Adadelta: v = rho v + (1-rho) g^2; d = sqrt(u + eps) / sqrt(v + eps) * g; u = rho u + (1-rho) d^2;
    p -= lr * d."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        check_range("learning", lr, label="rate")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        check_range("epsilon", eps)
        check_range("weight_decay", weight_decay)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
                        foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def init_state(self, p, group):
        return {"step": tensor(0.0), "square_avg": zeros_like(p), "acc_delta": zeros_like(p)}

    def update(self, p, grad, state, group, hypers):
        rho, eps = hypers["rho"], hypers["eps"]
        state["step"].add_(1)
        square_avg = addcmul_(state["square_avg"].mul_(rho), grad, grad, value=1 - rho)
        acc_delta = state["acc_delta"]
        delta = acc_delta.add(eps).sqrt_().div_(square_avg.add(eps).sqrt_()).mul_(grad)
        addcmul_(acc_delta.mul_(rho), delta, delta, value=1 - rho)
        p.add_(delta, alpha=-hypers["lr"])
