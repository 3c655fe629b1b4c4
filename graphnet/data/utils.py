"""Image grids as torchvision.utils has them: make_grid tiles a batch of images into one, save_image writes that
grid as a PNG (or any Pillow format), atomically when given a path. Values are read on the host (NumPy) and the
grid is a CPU tensor."""
import math
import os

import numpy as np

from ..frontend.creation import tensor as as_tensor
from ..frontend.tensor import Tensor
from ..serialization import write_atomic


def _batch(tensor):
    """A (B, C, H, W) NumPy batch from a tensor or a list of tensors; one-channel images become three-channel."""
    if isinstance(tensor, list):
        for t in tensor:
            if not isinstance(t, Tensor):
                raise TypeError(f"tensor or list of tensors expected, got a list containing {type(t)}")
        arr = np.stack([t.detach().cpu().numpy() for t in tensor])
    elif isinstance(tensor, Tensor):
        arr = tensor.detach().cpu().numpy()
    else:
        raise TypeError(f"tensor or list of tensors expected, got {type(tensor)}")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f"make_grid expects a 2-d (H, W), 3-d (C, H, W) or 4-d (B, C, H, W) tensor, got shape "
                         f"{list(arr.shape)}")
    return np.repeat(arr, 3, axis=1) if arr.shape[1] == 1 else arr


def _normalized(arr, value_range, scale_each):
    """Clamp to value_range (default: the min and max, per image with scale_each) and map it to [0, 1]."""
    if value_range is not None and not isinstance(value_range, tuple):
        raise TypeError("value_range has to be a tuple (min, max) if specified. min and max are numbers")
    parts = list(arr) if scale_each else [arr]
    out = []
    for part in parts:
        low, high = value_range if value_range is not None else (float(part.min()), float(part.max()))
        out.append((np.clip(part, low, high) - low) / max(high - low, 1e-5))
    return np.stack(out).astype(arr.dtype) if scale_each else out[0].astype(arr.dtype)


def make_grid(tensor, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False, pad_value=0.0):
    """Tile (B, C, H, W) images into a (C, rows * (H + padding) + padding, nrow * (W + padding) + padding) grid."""
    arr = _batch(tensor)
    if normalize:
        arr = _normalized(arr, value_range, scale_each)
    if arr.shape[0] == 1:
        return as_tensor(arr[0])
    n, c, h, w = arr.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value, dtype=arr.dtype)
    for k in range(n):
        y, x = (k // cols) * (h + padding) + padding, (k % cols) * (w + padding) + padding
        grid[:, y:y + h, x:x + w] = arr[k]
    return as_tensor(grid)


def save_image(tensor, fp, format=None, **kwargs):
    """make_grid(tensor, **kwargs) scaled from [0, 1] to uint8 and saved by Pillow; a path is written whole or not
    at all (temp file, then rename), its format read from the extension unless `format` is given."""
    from PIL import Image

    grid = make_grid(tensor, **kwargs).numpy()
    image = Image.fromarray((np.clip(grid * 255 + 0.5, 0, 255)).astype(np.uint8).transpose(1, 2, 0))
    if not isinstance(fp, (str, os.PathLike)):
        image.save(fp, format=format)
        return
    ext = os.path.splitext(os.fspath(fp))[1].lower()
    kind = format or Image.registered_extensions().get(ext)
    if kind is None:
        raise ValueError(f"unknown file extension: {ext}")
    write_atomic(fp, lambda f: image.save(f, format=kind))
