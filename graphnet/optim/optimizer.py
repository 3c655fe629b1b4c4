"""Optimizer base: parameter groups, per-parameter state, zero_grad and PyTorch-format state_dict save/load."""
import warnings
from collections import defaultdict

from ..frontend import tracer as _tracing
from ..frontend.api_elementwise import where
from ..frontend.autograd import enable_grad, no_grad
from ..frontend.tensor import Tensor


class _RequiredParameter:
    """Marks a hyper-parameter every param group must give (PyTorch's `required`)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()

def check_fused(fused, foreach, differentiable=False):
    """PyTorch's checks on its kernel-choice keywords; graphnet stores them in the groups and runs its own path."""
    if fused and differentiable:
        raise RuntimeError("`fused` does not support `differentiable`")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def _typename(obj):
    return "graphnet.Tensor" if isinstance(obj, Tensor) else type(obj).__name__


def check_range(name, value, low=0.0, high=None, label="value"):
    """Raise PyTorch's `ValueError("Invalid <name> <label>: <value>")` when value < low (or >= high when given)."""
    if not low <= value or (high is not None and not value < high):
        raise ValueError(f"Invalid {name} {label}: {value}")


def check_adam_family(lr, betas, eps, weight_decay):
    """PyTorch's argument checks shared by Adam, AdamW, Adamax, NAdam and RAdam, in its order."""
    check_range("learning", lr, label="rate")
    check_range("epsilon", eps)
    for i, beta in enumerate(betas):
        check_range("beta parameter at", beta, high=1.0, label=f"index {i}")
    check_range("weight_decay", weight_decay)


def _ordered(params):
    if isinstance(params, set):
        raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering of "
                        "tensors in sets will change between runs. Please use a list instead.")
    return params


class Optimizer:
    """Base class of all optimizers: holds `param_groups` (dicts of params + options) and `state` (per parameter)."""

    def __init__(self, params, defaults):
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, but "
                            f"got {_typename(params)}")
        self.state = defaultdict(dict)
        self.param_groups = []
        param_groups = list(_ordered(params))
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __repr__(self):
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {key}: {group[key]}" for key in sorted(group) if key != "params")
        return "\n".join(lines) + "\n)"

    def add_param_group(self, param_group):
        """Add a group of parameters (a dict with 'params' and optional per-group options) to optimize."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        else:
            param_group["params"] = list(_ordered(params))
        for param in param_group["params"]:
            if not isinstance(param, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {_typename(param)}")
            if not (param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in param_group["params"]]
        if len(ids) != len(set(ids)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        taken = {id(p) for group in self.param_groups for p in group["params"]}
        if not taken.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all optimized parameters: to None (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                if p.grad.grad_fn is not None:
                    p.grad.detach_()
                else:
                    p.grad.requires_grad_(False)
                p.grad.zero_()

    def step(self, closure=None):
        """Perform one optimization step; `closure` re-evaluates the model and returns the loss."""
        raise NotImplementedError

    # ---- serialization -------------------------------------------------------------------------------------------
    def state_dict(self):
        """{'state': {param index: state dict}, 'param_groups': [group options + 'params': [indices]]}."""
        index = {}
        groups = []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore options and state saved by `state_dict()` (tensors are copied, cast to each parameter's dtype)."""
        groups, saved_groups = self.param_groups, state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups ({len(saved_groups)} "
                             f"saved, optimizer has {len(groups)})")
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size of "
                                 f"optimizer's group (group {i}: {len(s['params'])} saved parameters, optimizer has "
                                 f"{len(g['params'])})")
        id_map = {old: p for g, s in zip(groups, saved_groups) for old, p in zip(s["params"], g["params"])}
        state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in id_map:
                param = id_map[key]
                state[param] = {k: _cast_state(param, k, v) for k, v in value.items()}
            else:
                state[key] = value
        self.state = state
        self.param_groups = [{**s, "params": g["params"]} for g, s in zip(groups, saved_groups)]

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)

    # ---- graphnet.compile ------------------------------------------------------------------------------------------
    def hypers(self, group):
        """The numbers an update rule computes with: `group` itself eagerly; while tracing, each numeric option
        (lr, momentum, betas, eps, weight_decay, ...) is a 0-d runtime input re-read from `param_groups` before every
        compiled call, so schedulers and manual changes apply without recompiling."""
        tracer = _tracing.active()
        if tracer is None:
            return group
        tracer.touch_optimizer(self)
        gi = next(i for i, g in enumerate(self.param_groups) if g is group)
        return {key: self._runtime(tracer, gi, key, value) for key, value in group.items() if key != "params"}

    def _runtime(self, tracer, gi, key, value):
        if isinstance(value, tuple) and all(_is_number(v) for v in value):
            return tuple(tracer.runtime_scalar((id(self), gi, key, i), lambda i=i: float(self.param_groups[gi][key][i]))
                         for i in range(len(value)))
        if _is_number(value):
            return tracer.runtime_scalar((id(self), gi, key), lambda: float(self.param_groups[gi][key]))
        return value

    def compile_guard(self):
        """What a compiled step baked in and must recompile for when it changes: the groups and their parameters,
        the identity of the state tensors, and each option's structure (flags, and whether a number that decides
        which terms exist is zero: `ZERO_TESTED`); learning rates, betas, eps, ... are runtime inputs, not guards."""
        out = []
        for g in self.param_groups:
            out.append(tuple(map(id, g["params"])))
            out.append([(k, v if type(v) in _FLAGS else _structure(k, v)) for k, v in g.items() if k != "params"])
        out.append([id(v) for st in self.state.values() for v in st.values() if isinstance(v, Tensor)])
        return out


_FLAGS = (bool, str, type(None))


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
        isinstance(value, Tensor) and value.ndim == 0 and value.dtype.is_floating_point)


# Numeric options whose being zero decides which terms an update has (a momentum buffer, a weight-decay term).
ZERO_TESTED = frozenset({"momentum", "weight_decay"})


def _structure(key, value):
    """The part of an option a traced update depends on: ZERO_TESTED numbers by being nonzero, other numbers not at
    all (they are runtime inputs), other objects by identity."""
    if _is_number(value):
        return float(value) != 0 if key in ZERO_TESTED else None
    if isinstance(value, tuple) and all(_is_number(v) for v in value):
        return None
    return id(value)


def _cast_state(param, key, value):
    """A private copy of a saved state value; tensors other than 'step' follow the parameter's dtype and device, also
    inside lists (LBFGS's history)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, key, v) for v in value)
    if not isinstance(value, Tensor):
        return value
    value = value.detach().clone()
    if key == "step":
        return value
    return value.to(param.device, param.dtype if param.is_floating_point() else value.dtype)


def closure_loss(closure):
    """Evaluate the optional closure with grad enabled (optimizers' step runs under no_grad)."""
    if closure is None:
        return None
    with enable_grad():
        return closure()


class PerParamOptimizer(Optimizer):
    """An optimizer whose update is a per-parameter rule: subclasses give `init_state` and `update`."""

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place, under no_grad; returns the closure's loss."""
        loss = closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p] if p in self.state else self.init_state(p, group)
                    hypers = self.hypers(group)
                    self.update(p, effective_grad(p, group, hypers), state, group, hypers)
                    if state:  # as PyTorch: no entry for a parameter without state (plain SGD)
                        self.state[p] = state
        return loss

    def init_state(self, p, group):
        """The fresh state of parameter `p` (PyTorch's key names)."""
        raise NotImplementedError

    def update(self, p, grad, state, group, hypers):
        """Apply one step to `p` given its (maximize-signed, L2-decayed) gradient: structure (flags, which terms
        exist) from `group`, arithmetic from `hypers` (numbers eagerly, runtime inputs when compiled)."""
        raise NotImplementedError


def effective_grad(p, group, hypers):
    """The gradient an update rule sees: negated when maximizing, plus L2 weight decay unless it is decoupled."""
    grad = p.grad.detach()
    if group.get("maximize", False):
        grad = -grad
    if group.get("weight_decay", 0) != 0 and not group.get("decoupled_weight_decay", False):
        grad = grad.add(p.detach(), alpha=hypers["weight_decay"])
    return grad


# ---- fused-style in-place helpers (PyTorch's addcmul_ / addcdiv_ / lerp_ composed from graphnet ops) ---------------
def addcmul_(t, a, b, value=1.0):
    """t += value * a * b, in place."""
    return t.add_(a * b, alpha=value)


def addcdiv_(t, a, b, value=1.0):
    """t += value * a / b, in place."""
    return t.add_(a / b, alpha=value)


def lerp_(t, end, weight):
    """t += weight * (end - t), in place, with PyTorch's two-sided formula for accuracy near weight 1 (chosen per
    call for a runtime weight tensor)."""
    if isinstance(weight, Tensor):
        return t.copy_(where(weight < 0.5, t + (end - t) * weight, end - (end - t) * (1.0 - weight)))
    if weight < 0.5:
        return t.add_(end - t, alpha=weight)
    return t.copy_(end - (end - t) * (1.0 - weight))
