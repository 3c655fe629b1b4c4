"""Random augmentation of a whole batch (N, ..., H, W) -- a tensor or an ndarray, sample axis first -- with an
independent draw for every sample, vectorised (no loop over samples): for a loader that hands over whole batches
(the datasets' fast path) and a training step that augments them. `generator` is a graphnet.Generator (default:
the global one, seeded by graphnet.manual_seed)."""
import numpy as np

from ...frontend.creation import default_rng
from ...frontend.tensor import Tensor
from . import functional as F


def _batch_array(name, images):
    arr = images._host() if isinstance(images, Tensor) else np.asarray(images)
    if arr.ndim < 3:
        raise ValueError(f"{name}: expected a batch of images (N, ..., H, W), got shape {tuple(arr.shape)}")
    return arr


def random_crop_batch(images, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant",
                      generator=None):
    """RandomCrop(size, padding, pad_if_needed, fill, padding_mode) with its own window for every sample."""
    size = F._setup_size(size)
    if padding is not None:
        F._check_pad_args(padding, fill, padding_mode)
    arr = _batch_array("random_crop_batch", images)
    h_axis = arr.ndim - 2
    arr, ltrb = F._crop_source(arr, h_axis, size, padding, pad_if_needed, fill, padding_mode)
    arr = F._pad(arr, h_axis, ltrb, fill)
    n, (h, w), (th, tw) = arr.shape[0], arr.shape[-2:], size
    rng = default_rng(generator)
    top, left = rng.integers(0, h - th + 1, size=n), rng.integers(0, w - tw + 1, size=n)
    flat = arr.reshape(n, -1, h, w)
    windows = np.lib.stride_tricks.sliding_window_view(flat, (th, tw), axis=(2, 3))  # (n, m, h-th+1, w-tw+1, th, tw)
    out = windows[np.arange(n), :, top, left]  # (n, m, th, tw): each sample's own window, one gather
    return F._like(out.reshape(arr.shape[:-2] + (th, tw)), images)


def _random_flip_batch(name, images, p, generator, axis):
    arr = _batch_array(name, images)
    flip = default_rng(generator).random(arr.shape[0]) < p
    out = arr.copy()
    out[flip] = np.flip(arr[flip], axis)
    return F._like(out, images)


def random_horizontal_flip_batch(images, p=0.5, generator=None):
    """RandomHorizontalFlip(p) drawn for every sample."""
    return _random_flip_batch("random_horizontal_flip_batch", images, p, generator, -1)


def random_vertical_flip_batch(images, p=0.5, generator=None):
    """RandomVerticalFlip(p) drawn for every sample."""
    return _random_flip_batch("random_vertical_flip_batch", images, p, generator, -2)
