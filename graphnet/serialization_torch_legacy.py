"""PyTorch's legacy (pre-1.6, non-zip) torch.save format, read without PyTorch.

The file is pickles back to back: torch's magic number, its protocol version (1001), a sys_info dict, the saved
object (tensors are `_rebuild_tensor_v2` calls on storages named by persistent ids `('storage', class, key, location,
numel, view)`), the sorted list of storage keys, then each listed storage's bytes: an 8-byte little-endian element
count and the little-endian elements. Every pickle goes through serialization_torch's restricted unpickler.
"""
import io
import pickle
import struct

import numpy as np

from . import serialization_torch as torch_format

MAGIC_NUMBER, PROTOCOL_VERSION = 0x1950A86A20F9469CFC6C, 1001
_MAGIC_PICKLE = pickle.dumps(MAGIC_NUMBER, protocol=2)  # how torch.save writes it by default
_COUNT = struct.Struct("<q")


class _NoGlobals(pickle.Unpickler):
    """Reads a file's first pickle only if it is plain data (sniffing whether it is torch's magic number)."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError("not plain data")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("not plain data")


def sniff(head):
    """What a file's first bytes `head` say: 'legacy' (torch's magic number, pickled with any protocol >= 2),
    'truncated' (the start of it and no more), another number where the magic number goes, or None (not legacy)."""
    if not head.startswith(b"\x80"):
        return None
    if len(head) < len(_MAGIC_PICKLE) and _MAGIC_PICKLE.startswith(head):
        return "truncated"
    try:
        first = _NoGlobals(io.BytesIO(head)).load()
    except Exception:
        return None
    if type(first) is not int:
        return None
    return "legacy" if first == MAGIC_NUMBER else first


class _StorageView(torch_format.Storage):
    """A storage of an old file that views `numel` elements of another from element `start` on."""

    def __init__(self, root, key, start, numel):  # not Storage.__init__: the root holds the array
        self.root, self.key, self.start, self.numel = root, key, root.start + start, numel
        self.dtype, self.location = root.dtype, root.location

    def base(self):
        return self.root.base()


class LegacyReader(torch_format.StorageReader):
    """Reads a legacy torch.save stream. Its storages' bytes follow the object pickle, so a first pass over that
    pickle (`_Survey`, building nothing) learns their types and sizes; after the byte counts are checked against
    the file, the second pass rebuilds the tensors, each storage read when a tensor first uses it."""

    def __init__(self, stream, name, place):
        super().__init__(name, place)
        self.stream = stream
        self._offsets = {}
        self._views = {}

    def persistent_load(self, pid):
        if type(pid) is not tuple or len(pid) != 6 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"{self.name}: unsupported persistent id {pid!r} in the object pickle")
        _, storage_type, key, location, numel, view = pid
        root = self.storage(storage_type, key, location, numel)
        return root if view is None else self._view_of(root, view)

    def _view_of(self, root, view):
        if type(view) is not tuple or len(view) != 3 or type(view[0]) is not str or not all(
                type(n) is int and n >= 0 for n in view[1:]) or view[1] + view[2] > root.numel:
            raise torch_format.TorchFormatError(f"storage {root.key!r} has an invalid view {view!r}")
        key, start, numel = view
        cached = self._views.get(key)
        if cached is None:
            cached = self._views[key] = _StorageView(root, key, start, numel)
        elif (cached.root, cached.start, cached.numel) != (root, root.start + start, numel):
            raise torch_format.TorchFormatError(f"storage view {key!r} is described twice, differently")
        return cached

    def load(self):
        magic = torch_format.unpickle(self.stream, self)
        if magic != MAGIC_NUMBER:
            raise torch_format.TorchFormatError(f"invalid magic number {magic!r}; corrupt file?")
        version = torch_format.unpickle(self.stream, self)
        if version != PROTOCOL_VERSION:
            raise torch_format.TorchFormatError(f"invalid protocol version {version!r} (legacy torch.save files "
                                                f"have {PROTOCOL_VERSION})")
        if type(torch_format.unpickle(self.stream, self)) is not dict:
            raise torch_format.TorchFormatError("its sys_info pickle is not a dict")
        start = self.stream.tell()
        survey = _Survey(self.name)
        torch_format.unpickle(self.stream, survey)
        end = self.stream.tell()
        self._locate(torch_format.unpickle(self.stream, self), survey._storages)
        self.stream.seek(start)
        return torch_format.unpickle(io.BytesIO(self.stream.read(end - start)), self)

    def _locate(self, keys, described):
        """Where each storage's bytes are, checked against the file's size and the counts it holds before anything
        is allocated."""
        listed = set(keys) if type(keys) is list and all(type(k) is str for k in keys) else None
        if listed is None or len(listed) != len(keys):
            raise torch_format.TorchFormatError(f"its storage key list is not a list of distinct strings: {keys!r}")
        for key in keys:
            if key not in described:
                raise torch_format.TorchFormatError(f"storage {key!r} has data but no tensor or storage describes it")
        for key in described:
            if key not in listed:
                raise torch_format.TorchFormatError(f"storage {key!r} is used by a tensor but has no data in the file")
        pos, file_end = self.stream.tell(), self.stream.seek(0, io.SEEK_END)
        for key in keys:
            storage = described[key]
            need = storage.numel * storage.dtype.element_size
            if pos + _COUNT.size + need > file_end:
                held = max(file_end - pos - _COUNT.size, 0)
                raise torch_format.OversizedStorageError(
                    f"storage {key!r} declares {storage.numel} elements of {storage.dtype.element_size} bytes "
                    f"({need} bytes), but the file holds only {held} bytes for it")
            self.stream.seek(pos)
            (count,) = _COUNT.unpack(self.stream.read(_COUNT.size))
            if count != storage.numel:
                raise torch_format.TorchFormatError(f"storage {key!r} holds {count} elements where its description "
                                                    f"says {storage.numel}")
            self._offsets[key] = pos + _COUNT.size
            pos += _COUNT.size + need

    def storage_array(self, storage):
        arr = np.empty(storage.numel, dtype=torch_format.raw_dtype(storage, "<"))
        self.stream.seek(self._offsets[storage.key])
        if self.stream.readinto(memoryview(arr).cast("B")) != arr.nbytes:
            raise torch_format.TorchFormatError(f"storage {storage.key!r} is shorter than its element count says")
        return torch_format.flat_array(arr, storage)


class _Survey(LegacyReader):
    """The first pass over the object pickle: the same admitted globals and storage checks, but it only records the
    storages (no array is allocated and no tensor built; the second pass checks the tensors)."""

    def __init__(self, name):
        super().__init__(None, name, None)

    def rebuild_tensor(self, storage, *args, **kwargs):
        return None

    def rebuild_parameter(self, data, *args, **kwargs):
        return None
