"""PyTorch's `torch.nn.modules.module` path for Module (real code subclasses `torch.nn.modules.module.Module`)."""
from ..module import Module, RemovableHandle, _IncompatibleKeys

__all__ = ["Module", "RemovableHandle", "_IncompatibleKeys"]
