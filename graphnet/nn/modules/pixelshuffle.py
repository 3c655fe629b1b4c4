"""PyTorch's `torch.nn.modules.pixelshuffle` path for PixelShuffle and PixelUnshuffle."""
from .upsampling import PixelShuffle, PixelUnshuffle

__all__ = ["PixelShuffle", "PixelUnshuffle"]
