"""`graphnet.utils.data`: the same names as graphnet.data, where PyTorch code looks for them (torch.utils.data)."""
from .. import data as _data

__all__ = [name for name in _data.__all__ if name not in ("datasets", "transforms")]
globals().update({name: getattr(_data, name) for name in __all__})
