"""graphnet.backends: PyTorch's torch.backends flags that scripts set or query (graphnet uses neither cuDNN nor MPS)."""
from . import cudnn, mps  # noqa: F401

__all__ = ["cudnn", "mps"]
