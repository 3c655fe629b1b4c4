"""nn.functional shape helpers: constant pad and flatten."""
from ...core.bind import bind


def pad(input, pad, mode="constant", value=None):
    """Constant padding; `pad` lists (left, right) pairs starting from the last dim."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported yet (only 'constant')")
    return bind("pad", input, pad=tuple(int(p) for p in pad), value=0 if value is None else value)


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)

