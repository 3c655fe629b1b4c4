"""PyTorch's torch.save zip format, read and written without PyTorch.

A torch.save file is a zip whose entries share one folder: `data.pkl` (a pickle of the saved object in which every
tensor is a call to `torch._utils._rebuild_tensor_v2` on a storage named by a persistent id), `data/<key>` (the raw
bytes of each storage), `byteorder` and `version`. Reading admits only the globals PyTorch's `weights_only=True`
admits and turns storages into NumPy arrays (views of one storage share one base array); writing emits the same
globals by name, so `torch.load(path, weights_only=True)` reads the file back.
"""
import codecs
import collections
import io
import pickle
import struct
import sys
import zipfile

import numpy as np

from .core import dtype as dt
from .core.device import device
from .frontend.tensor import Size, Tensor

_ALIGN = 64  # torch aligns each storage entry's data to 64 bytes, so files can be memory-mapped
_LOCAL_HEADER = 30
_STORAGE_DTYPES = {"BoolStorage": dt.bool_, "ByteStorage": dt.uint8, "CharStorage": dt.int8, "ShortStorage": dt.int16,
                   "IntStorage": dt.int32, "LongStorage": dt.int64, "HalfStorage": dt.float16,
                   "BFloat16Storage": dt.bfloat16, "FloatStorage": dt.float32, "DoubleStorage": dt.float64,
                   "UntypedStorage": dt.uint8}
_STORAGE_NAMES = {d.name: name for name, d in _STORAGE_DTYPES.items() if name != "UntypedStorage"}
_DTYPE_NAMES = {d.name: d for d in dt.ALL}


class TorchFormatError(ValueError):
    """A torch.save file that is damaged or holds something graphnet cannot represent (the reason is the message)."""


class RefusedGlobal(pickle.UnpicklingError):
    """data.pkl names a global that weights_only=True does not admit (nothing of it has run)."""


class OversizedStorageError(TorchFormatError):
    """A storage that declares more bytes than its zip entry holds: refused before anything is allocated."""


# ---- reading -------------------------------------------------------------------------------------------------------
def archive_folder(names):
    """The folder of the torch.save archive among zip entry `names` (the one holding data.pkl), or None."""
    folders = {n[:-len("data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1}
    return folders.pop() if len(folders) == 1 else None


class Storage:
    """One storage of the file: its flat array (read or memory-mapped on first use) and a base tensor for views."""

    start = 0  # where the storage begins in its base array (legacy files' storage views begin further in)

    def __init__(self, reader, key, dtype, location, numel):
        self.reader, self.key, self.dtype, self.location, self.numel = reader, key, dtype, location, numel
        self._base = None

    def base(self):
        if self._base is None:
            self._base = Tensor._wrap(self.reader.storage_array(self), self.dtype)
        return self._base


def check_view(storage, offset, size, stride):
    """(size, stride) as tuples, once they and `offset` are checked to stay inside `storage`."""
    size, stride = tuple(size), tuple(stride)
    ok = (type(offset) is int and offset >= 0 and len(size) == len(stride)
          and all(type(s) is int and s >= 0 for s in size + stride))
    if not ok:
        raise TorchFormatError(f"a tensor has an invalid layout (offset {offset!r}, size {size}, stride {stride})")
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.numel:
            raise TorchFormatError(f"a tensor of size {list(size)}, stride {list(stride)} and offset {offset} reads "
                                   f"past the end of its storage {storage.key!r} ({storage.numel} elements)")
    return size, stride


def _view(storage, offset, size, stride):
    """A tensor viewing `storage` (sharing its base array and version counter) with torch's size/stride/offset."""
    size, stride = check_view(storage, offset, size, stride)
    offset += storage.start
    base = storage.base()
    flat = base._data
    arr = np.ndarray(size, flat.dtype, buffer=flat, offset=offset * flat.itemsize if 0 not in size else 0,
                     strides=tuple(s * flat.itemsize for s in stride))
    t = Tensor._wrap(arr, storage.dtype)
    t._version, t._base = base._version, base
    return t


def _torch_size(dims=()):
    return Size(dims)


def _torch_device(kind, index=None):
    return device(kind if index is None else f"{kind}:{index}")


def _encode(text, encoding="latin1"):
    """`_codecs.encode`, which protocol-2 pickles use for bytes; only the latin1 spelling they write."""
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise TorchFormatError("_codecs.encode is only admitted as pickle's latin1 encoding of bytes")
    return text.encode("latin1")


class _Marker:
    """A global that only serves as an argument (torch.Tensor, a storage class): its full name."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


_TORCH_TENSOR, _TORCH_PARAMETER = _Marker("torch.Tensor"), _Marker("torch.nn.parameter.Parameter")
_REBUILDERS = {("torch._utils", "_rebuild_tensor_v2"): "rebuild_tensor",
               ("torch._utils", "_rebuild_parameter"): "rebuild_parameter",
               ("torch._utils", "_rebuild_parameter_with_state"): "rebuild_parameter",
               ("torch._tensor", "_rebuild_from_type_v2"): "rebuild_from_type"}
_BUILTINS = {"set": set, "complex": complex, "bytearray": bytearray}  # the builtins torch's weights_only admits
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "Counter"): collections.Counter,
    ("torch", "Tensor"): _TORCH_TENSOR,
    ("torch.nn.parameter", "Parameter"): _TORCH_PARAMETER,
    ("torch", "Size"): _torch_size,
    ("torch", "device"): _torch_device,
    ("_codecs", "encode"): _encode,
    **{(mod, name): cls for name, cls in _BUILTINS.items() for mod in ("builtins", "__builtin__")},
    **{("torch", name): _Marker(f"torch.{name}") for name in _STORAGE_DTYPES},
    **{("torch", name): d for name, d in _DTYPE_NAMES.items()},
}


class _Unpickler(pickle.Unpickler):
    """Admits exactly the globals of `_ALLOWED` (PyTorch's weights_only set that graphnet can represent)."""

    def __init__(self, file, reader):
        super().__init__(file)
        self._reader = reader
        self.persistent_load = reader.persistent_load

    def find_class(self, module, name):
        if (module, name) in _REBUILDERS:
            return getattr(self._reader, _REBUILDERS[module, name])
        found = _ALLOWED.get((module, name))
        if found is None:
            raise RefusedGlobal(
                f"Weights only load failed: {self._reader.name} uses the global {module}.{name}, which is not "
                "admitted: graphnet reads torch.save files the way torch.load(weights_only=True) does, admitting only "
                "tensors, storages, dtypes, devices, torch.Size and plain containers, and never runs other code "
                "from a file.")
        return found


def unpickle(file, reader):
    """One pickle from `file`, admitting only weights_only's globals; `reader` rebuilds its tensors and storages."""
    return _Unpickler(file, reader).load()


class StorageReader:
    """What both torch.save formats share: the rebuild functions their pickles call and one `Storage` per key.
    Subclasses say how persistent ids look (`persistent_load`) and where a storage's bytes are (`storage_array`)."""

    def __init__(self, name, place):
        self.name, self.place = name, place
        self._storages = {}

    def persistent_load(self, pid):
        """A zip archive's persistent id: ('storage', storage class, key, location, numel)."""
        if type(pid) is not tuple or len(pid) != 5 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"{self.name}: unsupported persistent id {pid!r} in data.pkl")
        _, storage_type, key, location, numel = pid
        return self.storage(storage_type, key, location, numel)

    def rebuild_tensor(self, storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
        """torch._utils._rebuild_tensor_v2: a view of one of the file's storages, placed where map_location says."""
        if not isinstance(storage, Storage):
            raise TorchFormatError("a tensor's storage is not a storage of the file")
        if requires_grad and not storage.dtype.is_floating_point:
            raise TorchFormatError(f"a tensor of dtype {storage.dtype.name} requires grad; only floating-point "
                                   "tensors can")
        t = self.place(_view(storage, storage_offset, size, stride), storage.location)
        if requires_grad:
            t.requires_grad = True
        return t

    def rebuild_parameter(self, data, requires_grad, backward_hooks, state=None):
        from .nn import Parameter

        if not isinstance(data, Tensor):
            raise TorchFormatError("a Parameter's data is not a tensor")
        return Parameter(data, requires_grad=bool(requires_grad))

    def rebuild_from_type(self, func, new_type, args, state):
        """torch._tensor._rebuild_from_type_v2 (tensor subclasses): admitted for torch.Tensor and Parameter only."""
        if new_type not in (_TORCH_TENSOR, _TORCH_PARAMETER) or func not in (self.rebuild_tensor,
                                                                            self.rebuild_parameter):
            raise TorchFormatError(f"a tensor of type {new_type!r}; only torch.Tensor and Parameter are read")
        return func(*args)

    def storage(self, storage_type, key, location, numel):
        if not isinstance(storage_type, _Marker) or storage_type.name[len("torch."):] not in _STORAGE_DTYPES:
            raise TorchFormatError(f"storage {key!r} has type {storage_type!r}, which is not a storage class")
        if type(key) is not str or type(location) is not str or type(numel) is not int or numel < 0:
            raise TorchFormatError(f"storage {key!r} has an invalid description")
        dtype = _STORAGE_DTYPES[storage_type.name[len("torch."):]]
        cached = self._storages.get(key)
        if cached is None:
            cached = self._storages[key] = Storage(self, key, dtype, location, numel)
        elif cached.dtype is not dtype or cached.numel != numel:
            raise TorchFormatError(f"storage {key!r} is described twice, differently")
        return cached


def flat_array(raw, storage):
    """The storage's elements as a flat array of graphnet's storage dtype, from its `raw` file-order elements
    (byte-swapped to native order; bfloat16 widened to float32)."""
    if not raw.dtype.isnative:
        raw = raw.astype(raw.dtype.newbyteorder("="))
    if storage.dtype is dt.bfloat16:
        raw = (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return raw


def raw_dtype(storage, byteorder):
    """The NumPy dtype of a storage's elements as the file holds them (bfloat16 as its uint16 bits)."""
    return np.dtype(np.uint16 if storage.dtype is dt.bfloat16 else storage.dtype.np).newbyteorder(byteorder)


class Reader(StorageReader):
    """Reads one torch.save archive from an open zip; storages are read (or memory-mapped) when a tensor uses them."""

    def __init__(self, zf, stream, folder, name, place, mmap_path=None):
        super().__init__(name, place)
        self.zf, self.stream, self.folder, self.mmap_path = zf, stream, folder, mmap_path
        order = zf.read(folder + "byteorder").decode().strip() if folder + "byteorder" in zf.namelist() else "little"
        if order not in ("little", "big"):
            raise TorchFormatError(f"unknown byteorder {order!r}")
        self.byteorder = "<" if order == "little" else ">"

    def load(self):
        return unpickle(io.BytesIO(self.zf.read(self.folder + "data.pkl")), self)

    def _entry(self, storage):
        """The zip entry of a storage, checked against the bytes the storage declares before anything is read."""
        entry = f"{self.folder}data/{storage.key}"
        try:
            info = self.zf.getinfo(entry)
        except KeyError:
            raise TorchFormatError(f"the entry {entry!r} of storage {storage.key!r} is missing") from None
        need = storage.numel * storage.dtype.element_size
        if info.file_size < need:
            raise OversizedStorageError(f"storage {storage.key!r} declares {storage.numel} elements of "
                                   f"{storage.dtype.element_size} bytes ({need} bytes), but its entry {entry!r} holds "
                                   f"{info.file_size}")
        if info.compress_type != zipfile.ZIP_STORED:
            raise TorchFormatError(f"the entry {entry!r} is compressed; torch.save never compresses storages")
        return info, need

    def storage_array(self, storage):
        """The storage's elements as a flat array of graphnet's storage dtype (bfloat16 widened to float32)."""
        info, need = self._entry(storage)
        raw = raw_dtype(storage, self.byteorder)
        if self.mmap_path is not None and raw.isnative and storage.numel:
            arr = np.memmap(self.mmap_path, dtype=raw, mode="c", offset=self._data_offset(info),
                            shape=(storage.numel,))
        else:
            arr = np.empty(storage.numel, dtype=raw)
            with self.zf.open(info) as f:  # reading the entry to its end checks its CRC
                if f.readinto(memoryview(arr).cast("B")) != need or (need < info.file_size and not f.read()):
                    raise TorchFormatError(f"storage {storage.key!r} is shorter than its entry says")
        return flat_array(arr, storage)

    def _data_offset(self, info):
        self.stream.seek(info.header_offset)
        header = self.stream.read(_LOCAL_HEADER)
        if len(header) < _LOCAL_HEADER or not header.startswith(b"PK\x03\x04"):
            raise TorchFormatError(f"entry {info.filename!r} has no local header where the zip directory points")
        name_len, extra_len = struct.unpack_from("<HH", header, 26)
        return info.header_offset + _LOCAL_HEADER + name_len + extra_len


# ---- writing -------------------------------------------------------------------------------------------------------
class _Global:
    """A global written into the pickle by name, whether or not its module can be imported here (torch's)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce insists on a callable; only torch.load ever calls it
        raise TypeError(f"{self.module}.{self.name} is only a name written into a torch.save file")


_REBUILD_TENSOR, _REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_tensor_v2"), _Global("torch._utils",
                                                                                            "_rebuild_parameter")
_SIZE, _DEVICE = _Global("torch", "Size"), _Global("torch", "device")
_PLAIN = (type(None), bool, int, float, complex, str, bytes, list, tuple, dict, collections.OrderedDict, set)
_PLAIN_GLOBALS = (collections.OrderedDict, set, complex, codecs.encode)  # what protocol 2 names for _PLAIN values


class _StorageOut:
    """A storage to write: its key, torch storage class, flat little/native-endian bytes and where it lives."""

    def __init__(self, key, dtype, flat, location):
        self.key, self.dtype, self.flat, self.location = key, dtype, flat, location
        self.cls = _Global("torch", _STORAGE_NAMES[dtype.name])

    def payload(self):
        flat = np.ascontiguousarray(self.flat)
        if self.dtype is dt.bfloat16:
            flat = (flat.view(np.uint32) >> np.uint32(16)).astype(np.uint16)
        return memoryview(flat.reshape(-1).view(np.uint8))


def _root(arr):
    """The array owning `arr`'s memory (through np.lib.stride_tricks.as_strided's DummyArray too)."""
    while True:
        base = arr.base
        if not isinstance(base, np.ndarray) and hasattr(base, "__array_interface__"):
            base = getattr(base, "base", None)
        if not isinstance(base, np.ndarray):
            return arr
        arr = base


def _layout(arr, root):
    """(element offset, element strides) of `arr` inside the C-contiguous `root`, or None if it is not a view."""
    if not root.flags.c_contiguous or root.dtype != arr.dtype or arr.size == 0:
        return None
    start = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    size = arr.itemsize
    if start < 0 or start % size or any(s < 0 or s % size for s in arr.strides):
        return None
    return start // size, tuple(s // size for s in arr.strides)


class _Pickler(pickle._Pickler):
    """Pickles plain data with tensors as torch.save does: a rebuild call on a storage named by a persistent id."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file):
        super().__init__(file, protocol=2)
        self.storages, self._by_root = [], {}

    def save_named_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_Global] = save_named_global
    dispatch[dt.DType] = lambda self, d: self.save_named_global(_Global("torch", d.name))

    def persistent_id(self, obj):
        if isinstance(obj, _StorageOut):
            return ("storage", obj.cls, obj.key, obj.location, obj.flat.size)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            return self._reduce_tensor(obj)
        if type(obj) is Size:
            return _SIZE, (tuple(obj),)
        if type(obj) is device:
            return _DEVICE, (obj.type,) if obj.index is None else (obj.type, obj.index)
        if type(obj) in _PLAIN + (_Global, _StorageOut, dt.DType) or any(obj is g for g in _PLAIN_GLOBALS):
            return NotImplemented
        raise TypeError(f"save(format='torch'): cannot store a {type(obj).__module__}.{type(obj).__qualname__}; a "
                        "torch.save file read with weights_only=True holds only tensors, dtypes, devices, torch.Size, "
                        "numbers, strings and containers (convert NumPy arrays with graphnet.from_numpy)")

    def _reduce_tensor(self, t):
        hooks = collections.OrderedDict()
        if type(t) is not Tensor:  # a Parameter: torch's rebuild wraps the plain tensor
            plain = Tensor._wrap(t._data, t._dtype, t._device)
            return _REBUILD_PARAMETER, (plain, t.requires_grad, hooks)
        storage, offset, stride = self._storage(t)
        return _REBUILD_TENSOR, (storage, offset, tuple(t.shape), stride, t.requires_grad, hooks)

    def _storage(self, t):
        """(storage, offset, strides) for a tensor: tensors viewing one array share one storage."""
        arr, location = t._host(), str(t.device)
        root = _root(arr)
        layout = _layout(arr, root)
        if layout is None:  # not a view of a contiguous array: a storage of its own
            root = np.ascontiguousarray(arr)
            layout, ident = (0, tuple(s // arr.itemsize for s in root.strides)), object()
        else:
            ident = (id(root), t.dtype.name, location)
        if ident not in self._by_root:  # keeping root alive keeps its id unique while we write
            self.storages.append(_StorageOut(str(len(self.storages)), t.dtype, root.reshape(-1), location))
            self._by_root[ident] = (self.storages[-1], root)
        return self._by_root[ident][0], layout[0], layout[1]


def _aligned_entry(zf, name, data):
    """Write `data` as a stored entry whose bytes start at a multiple of _ALIGN in the file (torch mmaps them)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    zip64 = 20 if len(data) * 1.05 > zipfile.ZIP64_LIMIT else 0
    start = zf.fp.tell() + _LOCAL_HEADER + len(name.encode()) + zip64 + 4
    pad = -start % _ALIGN
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    zf.writestr(info, data)


def write(f, obj, folder="archive"):
    """Write `obj` to the binary file `f` in torch.save's zip format."""
    buf = io.BytesIO()
    pickler = _Pickler(buf)
    pickler.dump(obj)
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        _aligned_entry(zf, f"{folder}/data.pkl", buf.getvalue())
        zf.writestr(f"{folder}/.format_version", "1")
        zf.writestr(f"{folder}/.storage_alignment", str(_ALIGN))
        zf.writestr(f"{folder}/byteorder", sys.byteorder)
        for storage in pickler.storages:
            _aligned_entry(zf, f"{folder}/data/{storage.key}", storage.payload())
        zf.writestr(f"{folder}/version", "3\n")
