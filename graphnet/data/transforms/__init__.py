"""Image transforms as torchvision.transforms has them, on tensor images (..., C, H, W) -- one image or a batch
sharing the random draws, as in torchvision -- and on ndarray images (H, W[, C]); random ones draw from graphnet's
global generator (graphnet.manual_seed). The *_batch functions draw per sample of a batch instead."""
import numbers

import numpy as np

from ...frontend.creation import default_rng, from_numpy
from ...frontend.tensor import Tensor
from . import functional as F
from .batch import random_crop_batch, random_horizontal_flip_batch, random_vertical_flip_batch
from .functional import InterpolationMode

__all__ = ["CenterCrop", "Compose", "InterpolationMode", "Lambda", "Normalize", "Pad", "RandomCrop",
           "RandomHorizontalFlip", "RandomVerticalFlip", "Resize", "ToTensor", "functional", "random_crop_batch",
           "random_horizontal_flip_batch", "random_vertical_flip_batch"]


class Compose:
    """Apply each transform in turn."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        body = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class ToTensor:
    """An HxW or HxWxC image (uint8 ndarray or PIL image) to a CxHxW float32 tensor; uint8 is scaled to [0, 1]."""

    def __call__(self, pic):
        if isinstance(pic, Tensor):
            raise TypeError("ToTensor: the input is already a tensor; ToTensor takes an HxW or HxWxC ndarray or a PIL "
                            "image")
        arr = np.asarray(pic)
        if arr.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic should be 2 or 3 dimensional (HxW or HxWxC), got {arr.ndim} dimensions "
                             f"(shape {arr.shape})")
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        chw = np.ascontiguousarray(arr.transpose(2, 0, 1))
        if chw.dtype == np.uint8:
            return from_numpy(chw.astype(np.float32) / np.float32(255))
        if chw.dtype == np.bool_:
            chw = chw.astype(np.uint8)
        return from_numpy(chw)

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """(image - mean[c]) / std[c] per channel, on a float tensor image (..., C, H, W)."""

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std, self.inplace = mean, std, inplace

    def __call__(self, tensor):
        return F.normalize(tensor, self.mean, self.std, self.inplace)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class Lambda:
    """A user function as a transform."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self):
        return "Lambda()"


class Pad:
    """Pad the borders of an image (see functional.pad): constant `fill`, edge, reflect or symmetric."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        F._check_pad_args(padding, fill, padding_mode)
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img):
        return F.pad(img, self.padding, self.fill, self.padding_mode)

    def __repr__(self):
        return f"Pad(padding={self.padding}, fill={self.fill}, padding_mode={self.padding_mode})"


def _offsets(h, w, size):
    """A random (top, left) of a `size` window in an h x w image (torchvision's draws: top, then left)."""
    if (h, w) == tuple(size):
        return 0, 0
    rng = default_rng()
    return int(rng.integers(0, h - size[0] + 1)), int(rng.integers(0, w - size[1] + 1))


class RandomCrop:
    """Crop a random (h, w) window after optional padding. One window per call, drawn from graphnet's global
    generator (graphnet.manual_seed), so a batch tensor shares it as in torchvision; random_crop_batch draws one per
    sample."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = F._setup_size(size)
        if padding is not None:
            F._check_pad_args(padding, fill, padding_mode)
        F._check_pad_args(0, fill, padding_mode)
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    @staticmethod
    def get_params(img, output_size):
        """(top, left, h, w) of a random crop of `output_size` from img."""
        _, h, w = F.get_dimensions(img)
        F._check_crop_size(h, w, output_size)
        return _offsets(h, w, output_size) + tuple(output_size)

    def __call__(self, img):
        arr, h_axis = F._array(img)
        arr, (left, top, right, bottom) = F._crop_source(arr, h_axis, self.size, self.padding, self.pad_if_needed,
                                                        self.fill, self.padding_mode)
        i, j = _offsets(arr.shape[h_axis] + top + bottom, arr.shape[h_axis + 1] + left + right, self.size)
        return F._like(F._crop(arr, h_axis, i - top, j - left, *self.size, fill=self.fill), img)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class CenterCrop:
    """Crop the central (h, w) window; a smaller image is zero-padded first."""

    def __init__(self, size):
        self.size = F._setup_size(size)

    def __call__(self, img):
        return F.center_crop(img, self.size)

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class _RandomFlip:
    """Flip with probability p (one draw per call from graphnet's global generator)."""

    flip = None

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        return type(self).flip(img) if default_rng().random() < self.p else img

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left-right with probability p."""

    flip = staticmethod(F.hflip)


class RandomVerticalFlip(_RandomFlip):
    """Mirror top-bottom with probability p."""

    flip = staticmethod(F.vflip)


class Resize:
    """Resize to `size` ((h, w), or an int: the smaller edge, aspect ratio kept); bilinear with antialias by
    default, as torchvision for tensors (see functional.resize)."""

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
        if not isinstance(size, (numbers.Integral, tuple, list)):
            raise TypeError(f"Size should be int or sequence. Got {type(size)}")
        if isinstance(size, (tuple, list)) and len(size) not in (1, 2):
            raise ValueError("If size is a sequence, it should have 1 or 2 values")
        self.size, self.max_size, self.antialias = size, max_size, antialias
        self.interpolation = F._interpolation_mode(interpolation)

    def __call__(self, img):
        return F.resize(img, self.size, self.interpolation, self.max_size, self.antialias)

    def __repr__(self):
        return (f"Resize(size={self.size}, interpolation={self.interpolation.value}, max_size={self.max_size}, "
                f"antialias={self.antialias})")
