"""Map-style datasets as torch.utils.data has them: Dataset, TensorDataset, Subset, ConcatDataset, random_split."""
import bisect
import math

import numpy as np

from ..frontend.creation import default_generator
from ..frontend.tensor import Tensor


class Dataset:
    """A map-style dataset: subclasses define `__getitem__(index)` and `__len__()`."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


def take(t, index):
    """`t[index]`: a NumPy view for plain CPU tensors (fast, shares memory), the autograd-aware op otherwise."""
    if t.device.type == "cpu" and not t.requires_grad:
        return Tensor._wrap(t._data[index], t.dtype)
    return t[index]


class TensorDataset(Dataset):
    """Samples are tuples `(t[i] for t in tensors)`; all tensors share their first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset expects tensors, got {type(t).__name__}; wrap arrays with "
                                "graphnet.tensor(...) or graphnet.from_numpy(...)")
        sizes = [t.shape[0] if t.ndim else None for t in tensors]
        if None in sizes or len(set(sizes)) != 1:
            raise ValueError(f"Size mismatch between tensors: TensorDataset needs the same first dimension in every "
                             f"tensor, got shapes {[tuple(t.shape) for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(take(t, index) for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def _batch(self, indices):
        """The default-collated batch for `indices` in one fancy-indexing step per tensor (DataLoader fast path)."""
        idx = np.asarray(indices, dtype=np.int64)
        return [take(t, idx) for t in self.tensors]


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self):
        return len(self.indices)

    def _batch(self, indices):
        return self.dataset._batch([self.indices[i] for i in indices])


def has_batch(dataset):
    """Whether `dataset` can build a default-collated batch itself (TensorDataset, and Subsets of one)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return callable(getattr(dataset, "_batch", None))


class ConcatDataset(Dataset):
    """The samples of several datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        if which == len(self.datasets):
            raise IndexError(f"index {idx} is out of range for a ConcatDataset of length {len(self)}")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


def _split_lengths(lengths, n):
    """Absolute lengths from `lengths`, which may be fractions summing to 1 (remainders go round-robin)."""
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        return counts
    if any(int(x) != x or x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative integers or fractions summing to 1, got "
                         f"{lengths}")
    return [int(x) for x in lengths]


def random_split(dataset, lengths, generator=default_generator):
    """Split `dataset` into non-overlapping random Subsets of the given lengths (or fractions summing to 1)."""
    n = len(dataset)
    counts = _split_lengths(lengths, n)
    if sum(counts) != n:
        raise ValueError(f"Sum of input lengths ({sum(counts)}) does not equal the length of the input dataset "
                         f"({n})!")
    perm = generator.rng.permutation(n).tolist()
    offsets = np.cumsum([0] + counts).tolist()
    return [Subset(dataset, perm[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
