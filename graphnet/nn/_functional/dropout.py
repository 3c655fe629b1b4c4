"""nn.functional dropout: a counter-based random mask, so eager and compiled dropout draw the same way."""
from ...core.bind import bind
from ...frontend.api_random import uniform
from .common import maybe_inplace


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p); identity in eval mode.

    The mask comes from the counter-based `rand_uniform` op on the default generator's (seed, offset) state, which
    it advances: the same ops run eagerly and traced, so compiled dropout draws a fresh, reproducible mask per call.
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"dropout: expected a floating-point input, got {input.dtype.name}; convert it with "
                           ".float() first")
    if p == 1.0:
        return maybe_inplace(input, input * 0.0, inplace)
    keep = bind("ge", uniform(input.shape, input.dtype, device=input.device), p)
    mask = bind("mul", bind("cast", keep, dtype=input.dtype), 1.0 / (1.0 - p))
    return maybe_inplace(input, input * mask, inplace)

