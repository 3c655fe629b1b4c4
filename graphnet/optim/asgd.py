"""ASGD: SGD with a decaying step eta_t and a running (Polyak) average `ax` of the iterates, started at step t0."""
from ..core import dtype as dt
from ..frontend.api_elementwise import maximum, where
from ..frontend.creation import tensor, zeros_like
from .optimizer import PerParamOptimizer, check_range


class ASGD(PerParamOptimizer):
    """PyTorch's ASGD: p = p * (1 - lambd * eta) - eta * g; ax += mu * (p - ax); then eta = lr / (1 + lambd * lr *
    t)^alpha and mu = 1 / max(1, t - t0). eta and mu are 0-d state tensors of the default dtype (as in PyTorch), read in
    float64, so the step is tensor-only and runs inside graphnet.compile with lr, lambd, alpha, t0 as runtime inputs."""

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None, maximize=False,
                 differentiable=False, capturable=False):
        check_range("learning", lr, label="rate")
        check_range("weight_decay", weight_decay)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def init_state(self, p, group):
        return {"step": tensor(0.0), "eta": tensor(float(group["lr"])), "mu": tensor(1.0), "ax": zeros_like(p)}

    def update(self, p, grad, state, group, hypers):
        lr, lambd = hypers["lr"], hypers["lambd"]
        step = state["step"].add_(1).to(dt.float64)
        eta, mu, ax = state["eta"].to(dt.float64), state["mu"].to(dt.float64), state["ax"]
        p.mul_(1 - lambd * eta).sub_(grad * eta)
        ax.copy_(where(mu == 1, p, ax + (p - ax) * mu))  # PyTorch copies p while mu is exactly 1
        scalar = dt.get_default_dtype()  # PyTorch rounds new eta and mu through torch.as_tensor(float)
        state["eta"].copy_((lr / (1 + lambd * lr * step) ** hypers["alpha"]).to(scalar))
        state["mu"].copy_((1 / maximum(step - hypers["t0"], 1.0)).to(scalar))
