"""graphnet.backends: torch.backends flags that scripts set or query (graphnet uses no cuBLAS, cuDNN or MPS)."""
from . import cuda, cudnn, mps  # noqa: F401

__all__ = ["cuda", "cudnn", "mps"]
