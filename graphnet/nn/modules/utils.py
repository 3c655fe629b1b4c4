"""`torch.nn.modules.utils`' argument helpers, which layer code written for PyTorch imports: `_pair(3) == (3, 3)`."""
import collections.abc
from itertools import repeat


def _ntuple(n, name="parse"):
    """A function making an n-tuple of one value; an iterable is returned as a tuple unchanged."""
    def parse(x):
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")

__all__ = ["_ntuple", "_single", "_pair", "_triple", "_quadruple"]
