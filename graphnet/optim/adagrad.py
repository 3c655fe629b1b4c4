"""Adagrad: per-coordinate learning rates scaled by the accumulated squared gradients."""
from ..core import dtype as dt
from ..frontend.creation import full_like, tensor
from .optimizer import PerParamOptimizer, addcdiv_, addcmul_, check_fused, check_range


class Adagrad(PerParamOptimizer):
    """PyTorch's Adagrad: sum += g^2; p -= lr / (1 + (step - 1) * lr_decay) * g / (sqrt(sum) + eps)."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        check_range("learning", lr, label="rate")
        check_range("lr_decay", lr_decay)
        check_range("weight_decay", weight_decay)
        check_range("initial_accumulator_value", initial_accumulator_value)
        check_range("epsilon", eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        check_fused(fused, foreach, differentiable)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p].update(self.init_state(p, group))

    def init_state(self, p, group):
        return {"step": tensor(0.0), "sum": full_like(p, group["initial_accumulator_value"])}

    def update(self, p, grad, state, group, hypers):
        step = state["step"].add_(1)
        step = step.item() if hypers is group else step.to(dt.float64)  # a Python number eagerly, as PyTorch's
        clr = hypers["lr"] / (1 + (step - 1) * hypers["lr_decay"])
        std = addcmul_(state["sum"], grad, grad).sqrt().add_(hypers["eps"])
        addcdiv_(p, grad, std, value=-clr)
