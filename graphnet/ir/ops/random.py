"""Counter-based random ops: draws are a pure function of an explicit (seed, offset) state tensor.

The RNG state is an int64 tensor [seed, offset] owned by a Generator. `rand_uniform` / `rand_normal` read it and
return samples of Philox4x64 keyed by `seed`, with `offset` in the second counter word, so every offset owns its
own disjoint 2**64-block stream; `rng_advance` returns the state with the offset moved past the `n` values drawn.
Eagerly the advanced state is written back into the generator's tensor; in a trace that tensor is a 'state' input
with a write-back, so a compiled graph draws fresh values on every call and stays reproducible under manual_seed.
"""
import numpy as np

from ...core import dtype as dt
from ...core.opdef import OpDef, OpError, register
from .util import fmt_shape

_U64 = (1 << 64) - 1


def _check_state(name, state):
    if state.dtype is not dt.int64 or state.shape != (2,):
        raise OpError(f"{name}: expected the generator state to be an int64 tensor of shape (2,) holding "
                      f"(seed, offset), got {state.dtype.name} of shape {fmt_shape(state.shape)}")


def philox(state):
    """The NumPy Generator whose stream is the one the state (seed, offset) names."""
    seed, offset = (int(v) & _U64 for v in np.asarray(state))
    return np.random.Generator(np.random.Philox(key=seed, counter=offset << 64))


def _uniform(rng, shape, d):
    """Uniform [0, 1) in dtype `d`: drawn in float64, rounded, and kept below 1 after the rounding."""
    u = rng.random(shape).astype(d, copy=False)
    return np.minimum(u, np.nextafter(d.type(1), d.type(0)))


def _normal(rng, shape, d):
    return rng.standard_normal(shape).astype(d, copy=False)


def _draw_infer(name):
    def infer(state, shape, dtype):
        _check_state(name, state)
        d = dt.as_dtype(dtype)
        if not d.is_floating_point:
            raise OpError(f"{name}: expected a floating-point dtype, got {d.name}")
        if any(not isinstance(s, (int, np.integer)) or s < 0 for s in shape):
            raise OpError(f"{name}: shape must be non-negative integers, got {tuple(shape)}")
        return state.with_(shape=tuple(int(s) for s in shape), dtype=d)

    return infer


def _draw_impl(sample):
    def impl(state, shape, dtype):
        return sample(philox(state), tuple(shape), dt.as_dtype(dtype).np)

    return impl


for _name, _sample in (("rand_uniform", _uniform), ("rand_normal", _normal)):
    register(OpDef(_name, "creation", _draw_infer(_name), _draw_impl(_sample)))


def _advance_infer(state, n):
    _check_state("rng_advance", state)
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise OpError(f"rng_advance: n must be a non-negative integer, got {n!r}")
    return state


def _advance_impl(state, n):
    out = np.array(state, dtype=np.int64)
    out[1] += n
    return out


register(OpDef("rng_advance", "opaque", _advance_infer, _advance_impl))
