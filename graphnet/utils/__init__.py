"""graphnet.utils: the `torch.utils` namespace (`graphnet.utils.data` is graphnet.data)."""
from . import data  # noqa: F401
from . import tensorboard  # noqa: F401  (importing it never needs the tensorboard package)
from . import safetensors  # noqa: F401  (importing it never needs the safetensors package)
