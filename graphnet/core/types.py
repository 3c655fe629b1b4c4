"""TensorType: what the IR knows about a value before it exists (shape, dtype, device)."""
from typing import NamedTuple

from .device import CPU, device
from .dtype import DType


class TensorType(NamedTuple):
    """Immutable and cheap to build (a NamedTuple): the dispatcher makes one per operand per op."""

    shape: tuple
    dtype: DType
    device: device = CPU

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def nbytes(self):
        return self.numel * self.dtype.itemsize

    def with_(self, shape=None, dtype=None):
        """A copy with another shape and/or dtype, on the same device."""
        return TensorType(self.shape if shape is None else tuple(shape), self.dtype if dtype is None else dtype,
                          self.device)

    def __str__(self):
        return f"{self.dtype.name}[{', '.join(map(str, self.shape))}]"
