"""Random tensors drawn through the explicit counter-based ops (ir/ops/random.py): the same code path runs eagerly
and traced, so compiled graphs draw fresh values per call and replay exactly after manual_seed.

`draw` reads the generator's (seed, offset) state tensor, samples, and advances the offset in place; while tracing,
the state tensor becomes a 'state' graph input whose advance is a write-back.
"""
from ..core import dtype as dt
from ..core.bind import bind
from ..core.device import CPU, as_device
from .api import export
from .autograd import no_grad
from .creation import default_generator
from .tensor import Tensor
from .tracer import bind_state


def draw(op_name, shape, dtype, generator=None, device=None):
    """Samples of the counter-based op `op_name` ('rand_uniform' or 'rand_normal'), advancing the generator."""
    state = (generator or default_generator).state_tensor()
    bind_state(state, "rng_state")
    shape = tuple(int(s) for s in shape)
    dev = as_device(device) if device is not None else CPU
    # GPU samples are drawn on the GPU from a copy of the 16-byte state (a different stream than the CPU's, as in
    # PyTorch); the generator's own state stays on the CPU and advances the same way
    out = bind(op_name, state if dev == state.device else state.to(dev), shape=shape, dtype=dt.as_dtype(dtype))
    n = 1
    for s in shape:
        n *= s
    with no_grad():
        state.copy_(bind("rng_advance", state, n=n))
    return out


def uniform(shape, dtype, generator=None, device=None):
    """Uniform [0, 1) samples of `shape` and floating `dtype`."""
    return draw("rand_uniform", shape, dtype, generator, device)


def _like(name, op_name):
    def like(input, dtype=None, device=None, requires_grad=False, generator=None, memory_format=None):
        out = draw(op_name, input.shape, dtype or input.dtype, generator, device or input.device)
        if requires_grad:
            out.requires_grad = True
        return out

    like.__name__ = name
    like.__doc__ = f"A tensor shaped like `input` filled by the counter-based `{op_name}` op."
    return export(name, method=False)(like)


rand_like = _like("rand_like", "rand_uniform")
randn_like = _like("randn_like", "rand_normal")


@export("bernoulli")
def bernoulli(input, p=None, *, generator=None):
    """1 with probability `input` (or the float `p`), else 0, in input's dtype; drawn with the counter-based op."""
    probs = input if p is None else p
    if isinstance(probs, Tensor) and probs._proxy is None and probs.numel():
        lo, hi = float(probs._host().min()), float(probs._host().max())
        if not 0.0 <= lo <= hi <= 1.0:
            raise RuntimeError(f"bernoulli: expected all probabilities to be in [0, 1], got values in [{lo}, {hi}]")
    elif not isinstance(probs, Tensor) and not 0.0 <= float(probs) <= 1.0:
        raise RuntimeError(f"bernoulli: expected p to be in [0, 1], got {probs}")
    dtype = input.dtype if input.dtype.is_floating_point else dt.get_default_dtype()
    u = uniform(input.shape, dtype, generator, input.device)
    return bind("cast", bind("lt", u, probs), dtype=input.dtype)


def bernoulli_(self, p=0.5, *, generator=None):
    """Fill self in place with Bernoulli(p) draws (p a float or a tensor of probabilities broadcast to self)."""
    return self._assign_inplace(bernoulli(self, p, generator=generator), "bernoulli_")


Tensor.bernoulli_ = bernoulli_
