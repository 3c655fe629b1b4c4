"""default_collate / default_convert: merge a list of samples into a batch, as torch.utils.data does."""
import collections.abc

import numpy as np

from ..frontend.api_movement import stack
from ..frontend.creation import from_numpy
from ..frontend.creation import tensor as make_tensor
from ..frontend.tensor import Tensor

_BAD_TYPE = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _stack(tensors):
    """Stack equally-shaped tensors along a new first dimension: in NumPy for plain CPU tensors, else the op."""
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.shape != first.shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first.shape)} at entry 0 "
                               f"and {list(t.shape)} at entry {i}")
    if first.device.type == "cpu" and all(t.dtype is first.dtype and not t.requires_grad for t in tensors):
        return Tensor._wrap(np.stack([t._data for t in tensors]), first.dtype)
    return stack(tensors)


def _is_numeric_array(x):
    return isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind not in "SUOV"


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _collate_mapping(batch):
    elem = batch[0]
    out = {key: default_collate([d[key] for d in batch]) for key in elem}
    try:
        return type(elem)(out)
    except TypeError:
        return out


def _collate_sequence(batch):
    elem = batch[0]
    if any(len(x) != len(elem) for x in batch):
        raise RuntimeError("each element in list of batch should be of equal size")
    columns = [default_collate(list(samples)) for samples in zip(*batch)]
    if _is_namedtuple(elem):
        return type(elem)(*columns)
    if isinstance(elem, tuple):
        return columns
    try:
        return type(elem)(columns)
    except TypeError:
        return columns


def default_collate(batch):
    """Tensors and arrays are stacked, numbers become tensors, and containers are collated field by field."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(batch)
    if _is_numeric_array(elem):
        return _stack([from_numpy(np.asarray(b)) for b in batch])
    if isinstance(elem, bool):
        return make_tensor(batch)
    if isinstance(elem, int):
        return make_tensor(batch, dtype="int64")
    if isinstance(elem, float):
        return make_tensor(batch, dtype="float64")
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _collate_mapping(batch)
    if isinstance(elem, collections.abc.Sequence):
        return _collate_sequence(batch)
    raise TypeError(_BAD_TYPE.format(type(elem)))


def default_convert(data):
    """Used when automatic batching is off (batch_size=None): NumPy arrays become tensors, containers are walked."""
    if _is_numeric_array(data):
        return from_numpy(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        out = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(out)
        except TypeError:
            return out
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (tuple, list)):
        return [default_convert(d) for d in data]
    return data
