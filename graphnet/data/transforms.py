"""Image transforms as torchvision.transforms has them: Compose, ToTensor, Normalize, Lambda, Pad."""
import numbers

import numpy as np

from ..frontend.creation import from_numpy
from ..frontend.tensor import Tensor


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


def _tensor_image(name, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a tensor image (..., C, H, W), got {type(x).__name__}; apply ToTensor() "
                        "first")
    if x.ndim < 3:
        raise ValueError(f"{name}: expected a tensor image of shape (..., C, H, W), got shape {tuple(x.shape)}")


class Normalize:
    """(image - mean[c]) / std[c] per channel, on a float tensor image (..., C, H, W)."""

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std, self.inplace = mean, std, inplace

    def __call__(self, tensor):
        _tensor_image("Normalize", tensor)
        if not tensor.dtype.is_floating_point:
            raise TypeError(f"Normalize: input tensor should be a float tensor, got {tensor.dtype}")
        np_dt = tensor.dtype.np
        mean = np.asarray(self.mean, dtype=np_dt).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=np_dt).reshape(-1, 1, 1)
        if (std == 0).any():
            raise ValueError(f"std evaluated to zero after conversion to {tensor.dtype}, leading to division by zero.")
        channels = tensor.shape[-3]
        if mean.shape[0] not in (1, channels) or std.shape[0] not in (1, channels):
            raise ValueError(f"Normalize: mean has {mean.shape[0]} and std {std.shape[0]} values but the image has "
                             f"{channels} channels (shape {tuple(tensor.shape)})")
        out = (tensor._host() - mean) / std
        if self.inplace:
            tensor._set_storage(from_numpy(out))
            return tensor
        return from_numpy(out).to(tensor.device)

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


_PAD_MODES = ("constant", "edge", "reflect", "symmetric")


def _pad_widths(padding):
    """(left, top, right, bottom) from an int, a 2-sequence (left/right, top/bottom) or a 4-sequence."""
    if isinstance(padding, numbers.Integral):
        return (padding,) * 4
    padding = tuple(padding)
    if len(padding) == 1:
        return padding * 4
    if len(padding) == 2:
        return padding * 2
    if len(padding) == 4:
        return padding
    raise ValueError(f"Padding must be an int or a 1, 2, or 4 element tuple, not a {len(padding)} element tuple")


class Pad:
    """Pad the borders of a tensor image (..., H, W) or an ndarray image (H, W[, C])."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"Padding mode should be either constant, edge, reflect or symmetric, got "
                             f"{padding_mode!r}")
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode
        self._ltrb = _pad_widths(padding)

    def __call__(self, img):
        left, top, right, bottom = self._ltrb
        is_tensor = isinstance(img, Tensor)
        arr = img._host() if is_tensor else np.asarray(img)
        h_axis = arr.ndim - 2 if is_tensor else 0
        widths = [(0, 0)] * arr.ndim
        widths[h_axis], widths[h_axis + 1] = (top, bottom), (left, right)
        kw = {"constant_values": self.fill} if self.padding_mode == "constant" else {}
        out = np.pad(arr, widths, mode=self.padding_mode, **kw)
        return from_numpy(out).to(img.device) if is_tensor else out

    def __repr__(self):
        return f"Pad(padding={self.padding}, fill={self.fill}, padding_mode={self.padding_mode})"
