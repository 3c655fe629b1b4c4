"""PyTorch's `torch.nn.modules.container` path for the containers (real code imports and isinstance-checks it)."""
from ..containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]
