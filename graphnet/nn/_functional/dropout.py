"""nn.functional dropout: a counter-based random mask, so eager and compiled dropout draw the same way."""
import warnings

from ...core.bind import bind
from ...frontend.api_random import uniform
from .common import maybe_inplace


def _keep_mask(input, shape, p):
    """A `shape` mask of 1/(1-p) (kept) and 0 (dropped), drawn from the default generator's counter state."""
    keep = bind("ge", uniform(shape, input.dtype, device=input.device), p)
    return bind("mul", bind("cast", keep, dtype=input.dtype), 1.0 / (1.0 - p))


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
    return maybe_inplace(input, input * _keep_mask(input, input.shape, p), inplace)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels (one draw per (N, C) plane) with probability p, scaling kept ones by 1/(1-p); identity
    in eval mode. Like PyTorch 2.x, a 3-d input is read as (N, C, L) (with a warning)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and will result "
                      f"in an error in a future release. To retain the behavior and silence this warning, please use "
                      f"dropout instead. Note that dropout2d exists to provide channel-wise dropout on inputs with 2 "
                      f"spatial dimensions, a channel dimension, and an optional batch dimension (i.e. 3D or 4D "
                      f"inputs).", stacklevel=2)
    elif input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior "
                      "is desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior "
                      "will change in a future release to interpret the input as one without a batch dimension, i.e. "
                      "shape (C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using "
                      "dropout1d instead.", stacklevel=2)
    if not training or p == 0.0:
        return input
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"dropout2d: expected a floating-point input, got {input.dtype.name}; convert it with "
                           ".float() first")
    if p == 1.0 or input.ndim < 2:
        return dropout(input, p, training, inplace)
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return maybe_inplace(input, input * _keep_mask(input, shape, p), inplace)
