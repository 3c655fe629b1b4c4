"""Devices: `graphnet.device('cpu' | 'cuda' | 'cuda:N')`, comparable, printable, hashable."""


class device:  # noqa: N801 - PyTorch's spelling
    """Where a tensor's storage lives; mirrors `torch.device`."""

    __slots__ = ("type", "index")

    def __init__(self, spec, index=None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index if index is None else index
        if isinstance(spec, int):
            spec, index = "cuda", spec
        if not isinstance(spec, str):
            raise TypeError(f"device(): expected a string like 'cpu' or 'cuda:0', got {type(spec).__name__}")
        kind, _, num = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {spec}")
        if num:
            if index is not None:
                raise RuntimeError(f"device(): index given twice in {spec!r} and index={index}")
            if not num.isdigit():
                raise RuntimeError(f"Invalid device string: '{spec}'")
            index = int(num)
        if kind == "cpu" and index not in (None, 0):
            raise RuntimeError(f"CPU device index must be 0 or None, got {index}")
        self.type, self.index = kind, index

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        idx = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{idx})"

    def __reduce__(self):
        return (device, (str(self),))


CPU = device("cpu")


def as_device(d):
    """Normalise None/str/int/device to a device; 'cuda' without an index means the current GPU (0)."""
    if d is None:
        return CPU
    d = d if isinstance(d, device) else device(d)
    if d.type == "cuda" and d.index is None:
        return device("cuda", 0)
    return d
