"""torchvision.transforms.functional for graphnet: pad, crop, center_crop, hflip, vflip, resize and normalize.

An image is a tensor (..., C, H, W) -- one image, or a batch (N, C, H, W) transformed as a whole -- or an ndarray
(H, W) / (H, W, C) as a dataset hands it over before ToTensor; the result has the input's kind. The work is NumPy
on the host (a data-loading step, not part of the model graph), vectorised over the whole array.
"""
import enum
import functools
import numbers

import numpy as np

from ...frontend.creation import from_numpy
from ...frontend.tensor import Tensor
from . import _resample


class InterpolationMode(enum.Enum):
    """torchvision's interpolation modes; tensors support NEAREST, NEAREST_EXACT, BILINEAR and BICUBIC."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_CODES = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC,
              4: InterpolationMode.BOX, 5: InterpolationMode.HAMMING, 1: InterpolationMode.LANCZOS}
_TENSOR_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic")
_PAD_MODES = ("constant", "edge", "reflect", "symmetric")


# ---- image <-> array ----------------------------------------------------------------------------------------------


def _array(img):
    """(the image's NumPy array, the axis of H): (..., C, H, W) tensors, (H, W[, C]) ndarrays."""
    if isinstance(img, Tensor):
        if img.ndim < 2:
            raise TypeError("Tensor is not a torch image.")
        return img._host(), img.ndim - 2
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise TypeError(f"img should be a tensor image (..., C, H, W) or an ndarray image (H, W[, C]); got an "
                        f"ndarray of shape {arr.shape}")
    return arr, 0


def _like(arr, img):
    """`arr` given back in img's kind: a tensor on img's device, or an ndarray."""
    arr = np.ascontiguousarray(arr)
    if not isinstance(img, Tensor):
        return arr
    out = from_numpy(arr)
    return out if out.device == img.device else out.to(img.device)


def _window(arr, h_axis, rows, cols):
    return arr[(slice(None),) * h_axis + (rows, cols)]


def get_dimensions(img):
    """[channels, height, width] of an image."""
    arr, h_axis = _array(img)
    channels = (arr.shape[h_axis - 1] if h_axis else 1) if isinstance(img, Tensor) else \
        (arr.shape[2] if arr.ndim == 3 else 1)
    return [channels, arr.shape[h_axis], arr.shape[h_axis + 1]]


def get_image_size(img):
    """[width, height] of an image."""
    _, h, w = get_dimensions(img)
    return [w, h]


# ---- pad and crop -------------------------------------------------------------------------------------------------


def _ltrb(padding):
    """(left, top, right, bottom) from an int, a 1-, 2- (left/right, top/bottom) or 4-sequence."""
    if not isinstance(padding, (numbers.Integral, tuple, list)):
        raise TypeError("Got inappropriate padding arg")
    if isinstance(padding, numbers.Integral):
        return (int(padding),) * 4
    if len(padding) not in (1, 2, 4):
        raise ValueError(f"Padding must be an int or a 1, 2, or 4 element tuple, not a {len(padding)} element tuple")
    return tuple(int(p) for p in (padding * 4 if len(padding) == 1 else padding * 2 if len(padding) == 2
                                  else padding))


def _check_pad_args(padding, fill, padding_mode):
    """torchvision's argument checks of pad; returns (left, top, right, bottom)."""
    if not isinstance(fill, numbers.Number):
        raise TypeError("Got inappropriate fill arg")
    if not isinstance(padding_mode, str):
        raise TypeError("Got inappropriate padding_mode arg")
    ltrb = _ltrb(padding)
    if padding_mode not in _PAD_MODES:
        raise ValueError(f"Padding mode should be either constant, edge, reflect or symmetric, got {padding_mode!r}")
    return ltrb


def _pad(arr, h_axis, ltrb, fill=0, padding_mode="constant"):
    """Pad the H and W axes (constant: one fill and one copy, faster than np.pad); negative widths crop, as
    torchvision does for tensors."""
    left, top, right, bottom = ltrb
    if min(ltrb) < 0:
        h, w = arr.shape[h_axis], arr.shape[h_axis + 1]
        arr = _window(arr, h_axis, slice(max(-top, 0), h - max(-bottom, 0)), slice(max(-left, 0), w - max(-right, 0)))
        left, top, right, bottom = (max(p, 0) for p in ltrb)
    if not (left or top or right or bottom):
        return arr
    h, w = arr.shape[h_axis], arr.shape[h_axis + 1]
    if padding_mode == "constant":
        out = np.full(arr.shape[:h_axis] + (top + h + bottom, left + w + right) + arr.shape[h_axis + 2:], fill,
                      arr.dtype)
        _window(out, h_axis, slice(top, top + h), slice(left, left + w))[...] = arr
        return out
    widths = [(0, 0)] * arr.ndim
    widths[h_axis], widths[h_axis + 1] = (top, bottom), (left, right)
    return np.pad(arr, widths, mode=padding_mode)


def pad(img, padding, fill=0, padding_mode="constant"):
    """Pad the borders by `padding` (int, (left/right, top/bottom) or (left, top, right, bottom)): constant `fill`,
    edge, reflect (without repeating the edge) or symmetric (repeating it)."""
    ltrb = _check_pad_args(padding, fill, padding_mode)
    arr, h_axis = _array(img)
    return _like(_pad(arr, h_axis, ltrb, fill, padding_mode), img)


def _crop(arr, h_axis, top, left, height, width, fill=0):
    """The (height, width) window at (top, left), filled with `fill` where it leaves the image (torchvision fills
    with 0): a view when it lies inside, else one fill and one copy."""
    h, w = arr.shape[h_axis], arr.shape[h_axis + 1]
    if top >= 0 and left >= 0 and top + height <= h and left + width <= w:
        return _window(arr, h_axis, slice(top, top + height), slice(left, left + width))
    out = np.full(arr.shape[:h_axis] + (height, width) + arr.shape[h_axis + 2:], fill, arr.dtype)
    r0, r1, c0, c1 = max(top, 0), min(top + height, h), max(left, 0), min(left + width, w)
    if r1 > r0 and c1 > c0:
        _window(out, h_axis, slice(r0 - top, r1 - top), slice(c0 - left, c1 - left))[...] = \
            _window(arr, h_axis, slice(r0, r1), slice(c0, c1))
    return out


def crop(img, top, left, height, width):
    """The (height, width) window whose top-left corner is (top, left); zero-filled where it leaves the image."""
    arr, h_axis = _array(img)
    return _like(_crop(arr, h_axis, int(top), int(left), int(height), int(width)), img)


def _crop_source(arr, h_axis, size, padding, pad_if_needed, fill, padding_mode):
    """RandomCrop's input as (array, (left, top, right, bottom) of constant padding left to the crop): `padding`,
    then (pad_if_needed) the shortfall to the crop size added on both sides, as torchvision does. Constant padding
    stays virtual (the crop fills it: one copy instead of two); the other modes are applied. Raises torchvision's
    error when the crop is still larger than the padded image."""
    ltrb = (0, 0, 0, 0) if padding is None else _ltrb(padding)
    virtual = padding_mode == "constant" and min(ltrb) >= 0
    if not virtual:
        arr, ltrb = _pad(arr, h_axis, ltrb, fill, padding_mode), (0, 0, 0, 0)
    left, top, right, bottom = ltrb
    th, tw = size
    grow_w = tw - (arr.shape[h_axis + 1] + left + right) if pad_if_needed else 0
    if grow_w > 0:
        left, right = (left + grow_w, right + grow_w) if virtual else (left, right)
        arr = arr if virtual else _pad(arr, h_axis, (grow_w, 0, grow_w, 0), fill, padding_mode)
    grow_h = th - (arr.shape[h_axis] + top + bottom) if pad_if_needed else 0
    if grow_h > 0:
        top, bottom = (top + grow_h, bottom + grow_h) if virtual else (top, bottom)
        arr = arr if virtual else _pad(arr, h_axis, (0, grow_h, 0, grow_h), fill, padding_mode)
    _check_crop_size(arr.shape[h_axis] + top + bottom, arr.shape[h_axis + 1] + left + right, size)
    return arr, (left, top, right, bottom)


def _check_crop_size(h, w, size):
    if h < size[0] or w < size[1]:
        raise ValueError(f"Required crop size {tuple(size)} is larger than input image size {(h, w)}")


def _setup_size(size):
    """(h, w) from an int or a 1- or 2-sequence."""
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if isinstance(size, (tuple, list)) and len(size) == 1:
        return int(size[0]), int(size[0])
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError("Please provide only two dimensions (h, w) for size.")
    return int(size[0]), int(size[1])


def _center_crop(arr, h_axis, size):
    th, tw = size
    h, w = arr.shape[h_axis], arr.shape[h_axis + 1]
    if tw > w or th > h:
        ltrb = ((tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0, (tw - w + 1) // 2 if tw > w else 0,
                (th - h + 1) // 2 if th > h else 0)
        arr = _pad(arr, h_axis, ltrb)
        h, w = arr.shape[h_axis], arr.shape[h_axis + 1]
        if (th, tw) == (h, w):
            return arr
    return _crop(arr, h_axis, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


def center_crop(img, output_size):
    """The central (h, w) window (an int: square); an image smaller than it is zero-padded first."""
    size = _setup_size(output_size)
    arr, h_axis = _array(img)
    return _like(_center_crop(arr, h_axis, size), img)


def hflip(img):
    """Mirror left-right."""
    arr, h_axis = _array(img)
    return _like(np.flip(arr, h_axis + 1), img)


def vflip(img):
    """Mirror top-bottom."""
    arr, h_axis = _array(img)
    return _like(np.flip(arr, h_axis), img)


# ---- resize -------------------------------------------------------------------------------------------------------


def _interpolation_mode(interpolation):
    """An InterpolationMode from one or from its Pillow integer code."""
    if isinstance(interpolation, numbers.Integral) and not isinstance(interpolation, bool):
        if int(interpolation) not in _PIL_CODES:
            raise ValueError(f"Unknown Pillow interpolation code {interpolation}")
        return _PIL_CODES[int(interpolation)]
    if not isinstance(interpolation, InterpolationMode):
        raise TypeError("Argument interpolation should be a InterpolationMode or a corresponding Pillow integer "
                        "constant")
    return interpolation


def _compute_resized_output_size(image_size, size, max_size=None):
    """torchvision's output (h, w): both given, or the smaller edge set to size[0] keeping the aspect ratio (the
    longer edge truncated), then capped at max_size."""
    h, w = image_size
    if len(size) == 2:
        return [int(size[0]), int(size[1])]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = int(size[0]), int(int(size[0]) * long / short)
    if max_size is not None:
        if max_size <= new_short:
            raise ValueError(f"max_size = {max_size} must be strictly greater than the requested size for the smaller "
                             f"edge size = {list(size)}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return [new_h, new_w]


def _resample_axis(x, axis, out, mode, antialias):
    size = x.shape[axis]
    if mode in ("nearest", "nearest-exact"):
        return np.take(x, _resample.nearest_index(size, out, mode == "nearest-exact"), axis=axis)
    m = _resample.weights(size, out, mode, antialias).astype(x.dtype)
    return np.moveaxis(np.moveaxis(x, axis, -1) @ m.T, -1, axis)


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """Resize to `size` ((h, w), or an int: the smaller edge, keeping the aspect ratio) by nearest, nearest-exact,
    bilinear or bicubic interpolation (align_corners=False); antialias (bilinear/bicubic only) low-pass filters when
    shrinking, as torchvision does by default. Integer images are computed in float32 and rounded back."""
    mode = _interpolation_mode(interpolation).value
    if isinstance(size, (list, tuple)):
        if len(size) not in (1, 2):
            raise ValueError(f"Size must be an int or a 1 or 2 element tuple/list, not a {len(size)} element "
                             "tuple/list")
        if max_size is not None and len(size) != 1:
            raise ValueError("max_size should only be passed if size specifies the length of the smaller edge, i.e. "
                             "size should be an int or a sequence of length 1 in torchscript mode.")
    elif not isinstance(size, numbers.Integral):
        raise TypeError(f"Size should be int or sequence. Got {type(size)}")
    if mode not in _TENSOR_MODES:
        raise ValueError(f"Interpolation mode {mode!r} is unsupported with Tensor input (nearest, nearest-exact, "
                         "bilinear, bicubic)")
    arr, h_axis = _array(img)
    out = _compute_resized_output_size(arr.shape[h_axis:h_axis + 2],
                                       [size] if isinstance(size, numbers.Integral) else size, max_size)
    if min(out) <= 0:
        raise ValueError(f"resize: output size {out} must be positive (input {list(arr.shape[h_axis:h_axis + 2])})")
    if out == list(arr.shape[h_axis:h_axis + 2]):
        return img
    x = arr if arr.dtype in (np.float32, np.float64) or mode.startswith("nearest") else arr.astype(np.float32)
    for axis, n in ((h_axis, out[0]), (h_axis + 1, out[1])):
        x = _resample_axis(x, axis, n, mode, bool(antialias) and not mode.startswith("nearest"))
    if x.dtype != arr.dtype:
        if np.issubdtype(arr.dtype, np.integer):
            info = np.iinfo(arr.dtype)
            x = np.clip(np.round(x), info.min, info.max)
        x = x.astype(arr.dtype)
    return _like(x, img)


# ---- normalize ----------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _mean_std(mean, std, dtype):
    """The (C, 1, 1) mean and std in the image's dtype, built once per transform and dtype."""
    mean = np.asarray(mean, dtype=dtype.np).reshape(-1, 1, 1)
    std = np.asarray(std, dtype=dtype.np).reshape(-1, 1, 1)
    if (std == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {dtype}, leading to division by zero.")
    return mean, std


def normalize(tensor, mean, std, inplace=False):
    """(tensor - mean[c]) / std[c] per channel of a float tensor image (..., C, H, W)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"img should be Tensor Image. Got {type(tensor)}: apply ToTensor() first")
    if not tensor.dtype.is_floating_point:
        raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
    if tensor.ndim < 3:
        raise ValueError(f"Expected tensor to be a tensor image of size (..., C, H, W). Got tensor.size() = "
                         f"{tensor.shape}.")
    mean, std = _mean_std(tuple(np.ravel(mean).tolist()), tuple(np.ravel(std).tolist()), tensor.dtype)
    channels = tensor.shape[-3]
    if mean.shape[0] not in (1, channels) or std.shape[0] not in (1, channels):
        raise ValueError(f"Normalize: mean has {mean.shape[0]} and std {std.shape[0]} values but the image has "
                         f"{channels} channels (shape {tuple(tensor.shape)})")
    out = np.subtract(tensor._host(), mean)
    np.divide(out, std, out=out)
    if inplace:
        tensor._set_storage(from_numpy(out))
        return tensor
    return _like(out, tensor)
