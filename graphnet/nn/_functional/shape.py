"""nn.functional shape helpers: pad (constant, reflect, replicate, circular) and flatten."""
import numpy as np

from ...core.bind import bind
from .resample import constant

_SUPPORTED = ("Supported combinations for non-constant padding:\n"
              "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
              "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
              "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")


def _source_index(mode, size, before, after):
    """Input position of each padded output cell along one dim (negative widths crop)."""
    i = np.arange(-before, size + after)
    if mode == "reflect":
        i = np.abs(i)
        return np.where(i >= size, 2 * (size - 1) - i, i)
    if mode == "replicate":
        return np.clip(i, 0, size - 1)
    lo, kept = max(-before, 0), size - max(-before, 0) - max(-after, 0)  # circular wraps the cropped range
    return lo + np.arange(-max(before, 0), kept + max(after, 0)) % kept


def _check_index_pad(mode, input, widths):
    n = len(widths)
    if not 1 <= n <= 3 or input.ndim not in (n + 1, n + 2):
        raise NotImplementedError(f"Padding size {2 * n} is not supported for {input.ndim}D input tensor.\n"
                                  f"{_SUPPORTED}")
    for k, (a, b) in enumerate(widths):
        dim = input.ndim - 1 - k
        size = input.shape[dim]
        if mode == "reflect" and (a >= size or b >= size):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input dimension, "
                               f"but got: padding ({a}, {b}) at dimension {dim} of input {list(input.shape)}")
        if mode == "circular" and (a > size or b > size):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        if min(size + a + b, size + min(a, 0) + min(b, 0)) < 1:
            name = "WHD"[k]
            raise RuntimeError(f"input ({name}: {size}) is too small. Calculated output {name}: {size + a + b}")


def pad(input, pad, mode="constant", value=None):
    """Pad by (left, right) pairs starting from the last dim. 'constant' uses the pad primitive (negative widths
    crop first); reflect / replicate / circular gather each padded dim through a constant source index."""
    pad = tuple(int(p) for p in pad)
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) > 2 * input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {input.ndim}")
    widths = [(pad[2 * k], pad[2 * k + 1]) for k in range(len(pad) // 2)]
    if mode == "constant":
        x = input
        if any(p < 0 for p in pad) and len(widths) <= input.ndim:  # negative widths crop
            crop = tuple(slice(max(-a, 0), input.shape[-1 - k] - max(-b, 0)) for k, (a, b) in enumerate(widths))
            x = input[(Ellipsis,) + crop[::-1]]
        return bind("pad", x, pad=tuple(max(p, 0) for p in pad), value=0 if value is None else value)
    if value is not None and value != 0:
        raise NotImplementedError(f"Padding mode \"{mode}\" doesn't take in value argument.")
    _check_index_pad(mode, input, widths)
    x = input
    for k, (a, b) in enumerate(widths):
        dim = input.ndim - 1 - k
        x = x.index_select(dim, constant(_source_index(mode, input.shape[dim], a, b), x))
    return x


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)
