"""graphnet.utils: the `torch.utils` namespace (`graphnet.utils.data` is graphnet.data)."""
from . import data  # noqa: F401
