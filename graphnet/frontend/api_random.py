"""Random tensors drawn through the explicit counter-based ops (ir/ops/random.py): the same code path runs eagerly
and traced, so compiled graphs draw fresh values per call and replay exactly after manual_seed.

`draw` reads the generator's (seed, offset) state tensor, samples, and advances the offset in place; while tracing,
the state tensor becomes a 'state' graph input whose advance is a write-back.
"""
import numpy as np

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


def _check_distribution(probs, num_samples, replacement):
    """PyTorch's multinomial checks: shapes and counts always, the probabilities' values when they are concrete (a
    traced input's values are unknown until it runs)."""
    if probs.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if not probs.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{probs.dtype.legacy_name[:-6]}")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > probs.shape[-1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    if probs._proxy is None:
        p = probs._host()
        if not np.isfinite(p).all() or (p < 0).any():
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        if p.size == 0 or (p.reshape(-1, p.shape[-1]).sum(-1) <= 0).any():
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")


@export("multinomial")
def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Category indices (int64) drawn from rows of unnormalised weights with the counter-based uniform op, so a
    seed replays them. With replacement: the count of normalised-CDF entries <= u (zero-weight categories own an
    empty interval). Without: PyTorch's exponential race, the top `num_samples` of p / E with E ~ Exp(1);
    zero-weight categories come last, in index order."""
    num_samples = int(num_samples)
    _check_distribution(input, num_samples, replacement)
    rows, n = (1, input.shape[0]) if input.ndim == 1 else tuple(input.shape)
    p = bind("reshape", input.detach(), shape=(rows, n))
    if replacement:
        cdf = bind("cumsum", p, dim=1)
        cdf = bind("div", cdf, bind("getitem", cdf, index=(("slice", None, None, None), ("slice", n - 1, n, 1))))
        u = uniform((rows, num_samples, 1), input.dtype, generator, input.device)
        out = bind("sum", bind("le", bind("reshape", cdf, shape=(rows, 1, n)), u), dims=(2,))
    else:
        u = uniform((rows, n), input.dtype, generator, input.device)
        race = bind("div", p, bind("neg", bind("log", bind("sub", 1.0, u))))
        keys = bind("where", bind("gt", p, 0.0), race, 0.0)
        out = bind("argsort", keys, dim=1, descending=True)
        out = bind("getitem", out, index=(("slice", None, None, None), ("slice", 0, num_samples, 1)))
    return bind("reshape", out, shape=(num_samples,) if input.ndim == 1 else (rows, num_samples))
