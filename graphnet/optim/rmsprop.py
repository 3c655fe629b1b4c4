"""RMSprop: divide the gradient by a running root-mean-square, optionally centered and with momentum."""
from ..frontend.creation import tensor, zeros_like
from .optimizer import PerParamOptimizer, addcdiv_, addcmul_, check_range, lerp_


class RMSprop(PerParamOptimizer):
    """PyTorch's RMSprop: v = alpha * v + (1 - alpha) * g^2; p -= lr * g / (sqrt(v - mean(g)^2 if centered) + eps)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        check_range("learning", lr, label="rate")
        check_range("epsilon", eps)
        check_range("momentum", momentum)
        check_range("weight_decay", weight_decay)
        check_range("alpha", alpha)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
                        capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def init_state(self, p, group):
        state = {"step": tensor(0.0), "square_avg": zeros_like(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_like(p)
        if group["centered"]:
            state["grad_avg"] = zeros_like(p)
        return state

    def update(self, p, grad, state, group, hypers):
        alpha, lr = hypers["alpha"], hypers["lr"]
        state["step"].add_(1)
        square_avg = addcmul_(state["square_avg"].mul_(alpha), grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = lerp_(state["grad_avg"], grad, 1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(hypers["eps"])
        if group["momentum"] > 0:
            buf = addcdiv_(state["momentum_buffer"].mul_(hypers["momentum"]), grad, avg)
            p.add_(buf, alpha=-lr)
        else:
            addcdiv_(p, grad, avg, value=-lr)
