"""Image datasets: MNIST from IDX files, the MNIST split shipped with graphnet, and scikit-learn's 8x8 digits.

Samples are `(image, label)`: the image is a 1xHxW float32 tensor in [0, 1] (or whatever `transform` makes of the
HxW array), the label a Python int. `.data` and `.targets` hold the whole set as tensors, as in torchvision.
"""
import functools
import os
from pathlib import Path

import numpy as np

from ..frontend.creation import from_numpy
from .dataset import Dataset, TensorDataset
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_mnist_csv
from .transforms import ToTensor

PACKAGED_MNIST = Path(__file__).resolve().parent / "mnist"
MNIST_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_TO_TENSOR = ToTensor()


class ImageDataset(Dataset):
    """Images (N, H, W) with integer labels; `scale` set means pixels are integers 0..scale handed on as floats."""

    def __init__(self, images, labels, transform=None, target_transform=None, scale=None):
        if len(images) != len(labels):
            raise ValueError(f"{type(self).__name__}: {len(images)} images but {len(labels)} labels")
        self.data = from_numpy(np.ascontiguousarray(images))
        self.targets = from_numpy(np.asarray(labels, dtype=np.int64))
        self.transform, self.target_transform, self._scale = transform, target_transform, scale

    def _image(self, raw):
        return raw if self._scale is None else raw.astype(np.float32) / np.float32(self._scale)

    def __getitem__(self, index):
        img, target = self._image(self.data._data[index]), int(self.targets._data[index])
        img = _TO_TENSOR(img) if self.transform is None else self.transform(img)
        return img, (target if self.target_transform is None else self.target_transform(target))

    def __len__(self):
        return len(self.targets._data)

    @property
    def _batch(self):
        """The DataLoader fast path (a whole batch in one step), only valid without user transforms."""
        return self._batch_no_transform if self.transform is None and self.target_transform is None else None

    def _batch_no_transform(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        images = self._image(self.data._data[idx])[:, None]
        if images.dtype == np.uint8:
            images = images.astype(np.float32) / np.float32(255)
        return [from_numpy(np.ascontiguousarray(images)), from_numpy(self.targets._data[idx])]

    def as_tensors(self):
        """(images as float32 (N, 1, H, W) in [0, 1], int64 labels): the whole set, for a TensorDataset."""
        return tuple(self._batch_no_transform(np.arange(len(self))))


def _find_file(root, name):
    """`root/name` or `root/name.gz`, also under torchvision's `root/MNIST/raw` layout."""
    for folder in (Path(root), Path(root) / "MNIST" / "raw", Path(root) / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    expected = ", ".join(f"{n}[.gz]" for pair in MNIST_FILES.values() for n in pair)
    raise FileNotFoundError(f"MNIST: {name} (or {name}.gz) not found in folder {os.fspath(root)!r} (nor in its "
                            f"MNIST/raw subfolder). Expected the standard IDX files: {expected}. graphnet never "
                            "downloads: copy them there, or use graphnet.data.datasets.mnist_split() for the MNIST "
                            "subset shipped with graphnet.")


class MNIST(ImageDataset):
    """MNIST from a folder of standard IDX files (`.gz` or raw), as torchvision.datasets.MNIST (never downloads)."""

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        images_name, labels_name = MNIST_FILES[bool(train)]
        images = read_idx(_find_file(root, images_name), IMAGES_MAGIC)
        labels = read_idx(_find_file(root, labels_name), LABELS_MAGIC)
        super().__init__(images, labels, transform, target_transform)
        self.root, self.train = root, train


@functools.lru_cache(maxsize=4)
def _split_arrays(root):
    csv_images, csv_labels = read_mnist_csv(Path(root) / "mnist_5k.csv.gz")
    t10k_images = read_idx(_find_file(root, "t10k-images-idx3-ubyte"), IMAGES_MAGIC)
    t10k_labels = read_idx(_find_file(root, "t10k-labels-idx1-ubyte"), LABELS_MAGIC).astype(np.int64)
    train = (np.concatenate([csv_images, t10k_images[:5000]]), np.concatenate([csv_labels, t10k_labels[:5000]]))
    return train, (t10k_images[5000:], t10k_labels[5000:])


def mnist_split(root=None, transform=None, target_transform=None, as_tensors=False):
    """graphnet's fixed MNIST split: train = the 5,000-image CSV + t10k images 0-4,999; test = t10k 5,000-9,999.

    Returns (train, test) ImageDatasets, or with `as_tensors=True` TensorDatasets of (float32 (N, 1, 28, 28) in
    [0, 1], int64 labels), the fast road for training loops.
    """
    parts = _split_arrays(os.fspath(PACKAGED_MNIST if root is None else root))
    sets = [ImageDataset(images.copy(), labels.copy(), transform, target_transform) for images, labels in parts]
    return tuple(TensorDataset(*s.as_tensors()) for s in sets) if as_tensors else tuple(sets)


class Digits(ImageDataset):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, pixel values 0..16 scaled to [0, 1])."""

    def __init__(self, transform=None, target_transform=None):
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ImportError("Digits needs scikit-learn, which ships the 8x8 digits data: pip install scikit-learn "
                              "(or pip install 'graphnet[datasets]')") from None
        bunch = load_digits()
        super().__init__(bunch.images.astype(np.uint8), bunch.target, transform, target_transform, scale=16)
