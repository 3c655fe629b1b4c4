"""safetensors files of graphnet tensors: the `safetensors` package's API (save_file, load_file, safe_open, save, load).

The format is the `safetensors` package's own (its NumPy API reads and writes the bytes); this module only turns
graphnet tensors into NumPy arrays and back. bfloat16 travels as `ml_dtypes.bfloat16` (graphnet keeps it in float32
storage). Importing this module needs neither package; using it does.
"""
import os

import numpy as np

from ..core import dtype as dt
from ..frontend.tensor import Tensor

_MISSING = ("graphnet.utils.safetensors needs the 'safetensors' and 'ml_dtypes' packages: "
            "pip install safetensors ml_dtypes")
_FRAMEWORKS = {"pt": "graphnet", "torch": "graphnet", "graphnet": "graphnet", "np": "np", "numpy": "np"}
# safetensors' dtype codes for graphnet's dtypes: what `load` (bytes) turns into arrays
_CODES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64,
          "F16": np.float16, "F32": np.float32, "F64": np.float64}


def _packages():
    """(safetensors, safetensors.numpy, ml_dtypes), imported on demand (an ImportError with the fix if missing)."""
    try:
        import ml_dtypes
        import safetensors
        import safetensors.numpy
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return safetensors, safetensors.numpy, ml_dtypes


class SafetensorsError(RuntimeError):
    """A safetensors file that cannot be read (damaged, truncated, not safetensors); the message names the file."""


def _arrays(tensors):
    """name -> contiguous little-endian NumPy array for each graphnet tensor (bfloat16 as ml_dtypes.bfloat16)."""
    if not isinstance(tensors, dict):
        raise TypeError(f"Expected a dict of [str, graphnet.Tensor] but received {type(tensors)}")
    ml_dtypes = _packages()[2]
    out = {}
    for k, t in tensors.items():
        if not isinstance(k, str):
            raise TypeError(f"Key `{k!r}` is invalid, expected str")
        if not isinstance(t, Tensor):
            raise ValueError(f"Key `{k}` is invalid, expected graphnet.Tensor but received {type(t)}")
        arr = t.detach()._host()
        arr = arr.astype(ml_dtypes.bfloat16) if t.dtype is dt.bfloat16 else arr
        out[k] = arr if arr.flags.c_contiguous else arr.copy(order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
    return out


def _tensor(arr, device):
    """A graphnet tensor owning a writable copy of `arr` (bfloat16 widened to its float32 storage)."""
    ml_dtypes = _packages()[2]
    if arr.dtype == ml_dtypes.bfloat16:
        t = Tensor._wrap(arr.astype(np.float32), dt.bfloat16)
    else:
        if arr.dtype not in dt._BY_NP:
            raise TypeError(f"graphnet has no dtype for a safetensors tensor of NumPy dtype {arr.dtype}")
        owned = arr if arr.flags.writeable and arr.flags.c_contiguous else arr.copy()
        t = Tensor._wrap(owned, dt._BY_NP[arr.dtype])
    return t if str(device) == "cpu" else t.to(device)


def _unreadable(filename, err):
    return SafetensorsError(f"graphnet.utils.safetensors: {os.fspath(filename)!r} cannot be read as a safetensors "
                            f"file ({err}); it is truncated, damaged or not a safetensors file.")


def save(tensors, metadata=None):
    """The safetensors bytes of a dict of tensors (metadata: an optional str -> str dict stored in the header)."""
    return _packages()[1].save(_arrays(tensors), metadata=metadata)


def save_file(tensors, filename, metadata=None):
    """Write a dict of tensors to `filename` as safetensors."""
    _packages()[1].save_file(_arrays(tensors), filename, metadata=metadata)


def load(data):
    """The dict of tensors in safetensors `data` (bytes)."""
    safetensors, _, ml_dtypes = _packages()
    try:
        views = safetensors.deserialize(data)
    except safetensors.SafetensorError as e:
        raise SafetensorsError(f"graphnet.utils.safetensors.load: the bytes are not a valid safetensors file ({e})") \
            from None
    codes = {**_CODES, "BF16": ml_dtypes.bfloat16}
    out = {}
    for name, view in views:
        if view["dtype"] not in codes:
            raise TypeError(f"graphnet has no dtype for the safetensors dtype {view['dtype']} of tensor {name!r}")
        out[name] = _tensor(np.frombuffer(view["data"], dtype=codes[view["dtype"]]).reshape(view["shape"]), "cpu")
    return out


def load_file(filename, device="cpu"):
    """The dict of tensors in the safetensors file `filename`, on `device`."""
    with safe_open(filename, framework="pt", device=device) as f:
        return {k: f.get_tensor(k) for k in f.keys()}


class safe_open:  # noqa: N801  (the safetensors package's name)
    """A safetensors file opened lazily: keys(), metadata() and get_tensor(name) reading one tensor at a time.

    framework "pt" / "graphnet" gives graphnet tensors, "np" NumPy arrays (bfloat16 as ml_dtypes.bfloat16)."""

    def __init__(self, filename, framework, device="cpu"):
        if framework not in _FRAMEWORKS:
            raise ValueError(f"framework {framework!r} is not supported: use 'pt' (or 'graphnet') or 'np'")
        safetensors = _packages()[0]
        self._filename, self._framework, self._device = filename, _FRAMEWORKS[framework], device
        try:
            self._file = safetensors.safe_open(os.fspath(filename), framework="np")
        except safetensors.SafetensorError as e:
            raise _unreadable(filename, e) from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.__exit__(*exc)

    def keys(self):
        return list(self._file.keys())

    def metadata(self):
        return self._file.metadata()

    def get_tensor(self, name):
        """The tensor `name`, read from the file now."""
        safetensors = _packages()[0]
        try:
            arr = self._file.get_tensor(name)
        except safetensors.SafetensorError as e:
            if name not in self._file.keys():
                raise KeyError(name) from None
            raise _unreadable(self._filename, e) from None
        return arr if self._framework == "np" else _tensor(arr, self._device)
