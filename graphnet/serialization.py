"""graphnet.save / graphnet.load: a safe checkpoint format that runs no code when loaded.

A checkpoint is an uncompressed zip: a marker entry (format name + version), a JSON tree of the saved object (dicts in
order, lists, tuples, sets, numbers, strings, None, dtypes, devices; tensors and arrays by reference) and one `.npy`
entry per tensor (np.save / np.load with allow_pickle=False). Anything else (a whole nn.Module, say) is pickled into
a separate entry that `load` opens with `weights_only=False`, or under weights_only=True only where every global it
names was allowlisted (`add_safe_globals` / `safe_globals`, as in PyTorch). Saving to a path is atomic.
"""
import collections
import contextlib
import io
import json
import os
import pickle
import re
import secrets
import struct
import zipfile

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no flock, so temp files of killed saves are left alone rather than guessed at
    fcntl = None

from . import serialization_torch as torch_format
from . import serialization_torch_legacy as torch_legacy
from .core import dtype as dt
from .core.device import CPU, as_device, device
from .frontend.tensor import Tensor

FORMAT, VERSION = "graphnet-checkpoint", 1
PREFIX = "graphnet_checkpoint/"
MARKER, DATA, OBJECTS = PREFIX + "format.json", PREFIX + "data.json", PREFIX + "objects.pkl"
_ZIP_SIG = b"PK\x03\x04"
_LOCAL_HEADER_LEN = 30  # fixed part of a zip local file header; the first entry's name follows it
_LOCAL_NAME_LEN_AT = 26  # where a local header holds the lengths of the name and extra field that follow it
_SCALARS = (type(None), bool, int, float, str)
_SEQS = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}
_MAPS = {"dict": dict, "odict": collections.OrderedDict}
_SEQ_TAG = {cls: tag for tag, cls in _SEQS.items()}
_MAP_TAG = {cls: tag for tag, cls in _MAPS.items()}
_EXIT = object()


class CheckpointError(RuntimeError):
    """`load` cannot (or will not) read a file: damaged, not a graphnet checkpoint, too new, or refused as unsafe."""


class _Leaves:
    """What the JSON tree points at: host arrays of tensors (with their metadata) and objects to pickle."""

    def __init__(self):
        self.arrays, self.records, self.objects, self.object_types = [], [], [], []
        self._index = {}  # id of a saved object (alive in the tree being saved) -> its index

    def ref(self, obj, kind):
        """The node referring to `obj`, which is added the first time (a shared tensor is stored once)."""
        tag = "object" if kind == "object" else "tensor"
        if id(obj) not in self._index:
            if kind == "object":
                self._index[id(obj)] = len(self.objects)
                self.objects.append(obj)
                self.object_types.append(f"{type(obj).__module__}.{type(obj).__qualname__}")
            else:
                self._index[id(obj)] = len(self.arrays)
                self.arrays.append(obj._host() if isinstance(obj, Tensor) else obj)
                self.records.append(_record(obj, self.arrays[-1], kind))
        return {"t": tag, "ref": self._index[id(obj)]}


def _record(obj, arr, kind):
    rec = {"kind": kind, "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if isinstance(obj, Tensor):
        rec.update(requires_grad=obj.requires_grad, device=str(obj.device))
        if obj.dtype.round is not None:  # bfloat16: the .npy holds its float32 storage
            rec["graphnet_dtype"] = obj.dtype.name
    return rec


def _tensor_kind(obj):
    """'tensor', 'parameter' or 'ndarray' for data we store as .npy, None for what has to be pickled."""
    if type(obj) is Tensor:
        return "tensor"
    if isinstance(obj, Tensor) and type(obj).__name__ == "Parameter" and type(obj).__module__.startswith("graphnet."):
        return "parameter"
    if type(obj) is np.ndarray and obj.dtype.kind in "biufc":
        return "ndarray"
    return None


def _node(obj, leaves):
    """The JSON node for `obj` and, for containers, the (child, holder, slot) triples still to encode."""
    cls = type(obj)
    if cls in _SCALARS:
        return obj, None
    if cls in _SEQ_TAG:
        node = {"t": _SEQ_TAG[cls], "v": [None] * len(obj)}
        return node, [(x, node["v"], i) for i, x in enumerate(obj)]
    if cls in _MAP_TAG:
        pairs = [[None, None] for _ in range(len(obj))]
        node = {"t": _MAP_TAG[cls], "v": pairs}
        return node, [(x, pair, slot) for pair, kv in zip(pairs, obj.items()) for slot, x in enumerate(kv)]
    if cls is dt.DType:
        return {"t": "dtype", "v": obj.name}, None
    if cls is device:
        return {"t": "device", "v": str(obj)}, None
    if isinstance(obj, np.generic) and obj.dtype in dt._BY_NP:
        return {"t": "npscalar", "dtype": obj.dtype.str, "v": obj.item()}, None
    kind = _tensor_kind(obj)
    return leaves.ref(obj, kind or "object"), None


def _encode(root, leaves):
    """`root` as a JSON tree (walked with an explicit stack; a container inside itself is an error)."""
    out, active = [None], set()
    stack = [(root, out, 0)]
    while stack:
        obj, holder, slot = stack.pop()
        if obj is _EXIT:
            active.discard(holder)
            continue
        node, children = _node(obj, leaves)
        holder[slot] = node
        if children is not None:
            if id(obj) in active:
                raise ValueError(f"save: the object contains a reference cycle (a {type(obj).__name__} inside "
                                 "itself); graphnet's checkpoint format stores trees")
            active.add(id(obj))
            stack.append((_EXIT, id(obj), None))
            stack.extend(reversed(children))
    return out[0]


def _write_archive(f, obj, pickle_module, protocol):
    leaves = _Leaves()
    tree = _encode(obj, leaves)
    data = {"root": tree, "tensors": leaves.records, "objects": leaves.object_types}
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(MARKER, json.dumps({"format": FORMAT, "version": VERSION}))
        zf.writestr(DATA, json.dumps(data))
        for i, arr in enumerate(leaves.arrays):
            with zf.open(f"{PREFIX}tensors/{i}.npy", "w", force_zip64=arr.nbytes > 2**30) as entry:
                np.save(entry, arr, allow_pickle=False)
        if leaves.objects:
            zf.writestr(OBJECTS, pickle_module.dumps(leaves.objects, protocol=protocol))


def _lock(f, flags=0):
    """Take the lock a writer holds on its temp file until it closes it; raises BlockingIOError if held (LOCK_NB)."""
    if fcntl is not None:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | flags)


def _open_temp(folder, base):
    """(path, file) of a new temp file `.<target name>.<12 hex digits>.tmp`, locked while open; a name another save
    removed before we locked it is tried again."""
    while True:
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        f = open(tmp, "xb")
        _lock(f)
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(f.fileno()), os.stat(tmp)):
                return tmp, f
        f.close()


def _remove_if_stale(path):
    """Delete the temp file `path` if no live writer holds its lock (its save was killed)."""
    try:
        f = open(path, "rb")
    except OSError:
        return
    with f, contextlib.suppress(OSError):
        _lock(f, fcntl.LOCK_NB)
        os.unlink(path)


def _remove_stale_temps(folder, base):
    """Delete the temp files that killed saves to the same target left behind (they pile up: 12 kills left 1.27 GB)."""
    if fcntl is None:
        return
    pattern = re.compile(rf"\.{re.escape(base)}\.[0-9a-f]{{12}}\.tmp")
    for name in os.listdir(folder):
        if pattern.fullmatch(name):
            _remove_if_stale(os.path.join(folder, name))


def write_atomic(path, write):
    """Write to a new file beside `path`, fsync it, then rename it over `path`: readers never see half a file."""
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    _remove_stale_temps(folder, base)
    tmp, f = _open_temp(folder, base)
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save(obj, f, pickle_module=pickle, pickle_protocol=None, _use_new_zipfile_serialization=True, *,
         format="graphnet"):
    """Save `obj` (a state_dict, tensors, nested containers, or a whole object) to a path or a binary file object.

    format="torch" writes torch.save's zip format (plain data and tensors only), which torch.load(weights_only=True)
    reads."""
    if format == "torch":
        write = lambda fobj: torch_format.write(fobj, obj)
    elif format == "graphnet":
        protocol = pickle.DEFAULT_PROTOCOL if pickle_protocol is None else pickle_protocol
        write = lambda fobj: _write_archive(fobj, obj, pickle_module, protocol)
    else:
        raise ValueError(f"save: format must be 'graphnet' or 'torch', got {format!r}")
    if isinstance(f, (str, os.PathLike)):
        write_atomic(f, write)
    elif hasattr(f, "write"):
        write(f)
    else:
        raise TypeError(f"save: f must be a path or a writable binary file object, got {type(f).__name__}")


# ---- loading -------------------------------------------------------------------------------------------------------
_TENSOR_KINDS = ("tensor", "parameter", "ndarray")
_LEAF_TAGS = {"dtype": lambda n: dt.from_name(n["v"]), "device": lambda n: device(n["v"]),
              "npscalar": lambda n: np.dtype(n["dtype"]).type(n["v"])}


def _corrupted(name, why):
    return CheckpointError(f"graphnet.load: {name} is truncated or corrupted ({why}); it cannot be loaded. Save it "
                           "again or restore a backup.")


def _foreign(name, head, names=()):
    if any(n.endswith("/data.pkl") for n in names):
        why = "it looks like a PyTorch torch.save file, but its entries are not in one folder"
    elif head.startswith(_ZIP_SIG):
        why = "it is a zip archive without graphnet's format marker"
    elif head[:1] == b"\x80":
        why = "it looks like a pickle file"
    else:
        why = "it does not start like one"
    return CheckpointError(f"graphnet.load: {name} is not a graphnet checkpoint ({why}). graphnet.load reads only "
                           "files written by graphnet.save and never unpickles other formats.")


def _looks_ours(head):
    """Whether `head` (the file's first bytes) is, as far as it goes, the start of a graphnet checkpoint."""
    n = min(len(head), len(_ZIP_SIG))
    name = head[_LOCAL_HEADER_LEN:_LOCAL_HEADER_LEN + len(MARKER)]
    return head[:n] == _ZIP_SIG[:n] and MARKER.encode().startswith(name)


def _looks_torch(head):
    """Whether `head` is, as far as it goes, the start of a torch.save zip (whose first entry is <folder>/data.pkl)."""
    if len(head) < _LOCAL_HEADER_LEN or not head.startswith(_ZIP_SIG):
        return False
    name_len = struct.unpack_from("<H", head, _LOCAL_NAME_LEN_AT)[0]
    first = head[_LOCAL_HEADER_LEN:_LOCAL_HEADER_LEN + name_len]
    return len(first) < name_len or first.endswith(b"/data.pkl")


class _EntryError(Exception):
    """An entry `save` never writes (compressed, duplicate, overlapping, sized unlike its record): `load` refuses it."""

    def __init__(self, entry, why):
        super().__init__(entry, why)
        self.entry, self.why = entry, why


def _refusal(name, err, writer="graphnet.save"):
    return CheckpointError(
        f"graphnet.load: {name} is refused before reading: its entry {err.entry!r} {err.why}. {writer} never "
        "writes such an entry, so the file was altered (or built to exhaust memory when read). Save the checkpoint "
        f"again with {writer}; if a zip tool repacked it, repack it with stored entries (zip -0).")


def _entry_span(stream, info):
    """(start, end) of an entry in the archive: its local header, name, extra field and stored bytes."""
    stream.seek(info.header_offset)
    header = stream.read(_LOCAL_HEADER_LEN)
    if len(header) < _LOCAL_HEADER_LEN or not header.startswith(_ZIP_SIG):
        raise ValueError(f"entry {info.filename!r} has no local header where the zip directory points")
    name_len, extra_len = struct.unpack_from("<HH", header, _LOCAL_NAME_LEN_AT)
    return info.header_offset, info.header_offset + _LOCAL_HEADER_LEN + name_len + extra_len + info.compress_size


def _check_layout(zf, stream):
    """Refuse compressed, duplicate and overlapping entries before any is read: each then costs what it occupies."""
    seen = set()
    for info in zf.infolist():
        if info.filename in seen:
            raise _EntryError(info.filename, "appears more than once")
        seen.add(info.filename)
        if info.compress_type != zipfile.ZIP_STORED:
            why = f"is compressed (zip method {info.compress_type}), which can expand to far more memory than the file"
            raise _EntryError(info.filename, why)
        if info.compress_size != info.file_size:
            raise _EntryError(info.filename, f"is stored in {info.compress_size} bytes but declares {info.file_size}")
    spans = sorted((_entry_span(stream, info), info.filename) for info in zf.infolist())
    archive_end = stream.seek(0, os.SEEK_END)
    for ((_, end), entry), ((next_start, _), _) in zip(spans, spans[1:] + [((archive_end, None), None)]):
        if end > next_start:
            raise _EntryError(entry, "overlaps the next entry or runs past the end of the file")


def _read_npy(zf, info, rec):
    """One tensor entry; its header and declared size are checked against its JSON record before the data is read."""
    if rec["kind"] not in _TENSOR_KINDS:
        raise ValueError(f"unknown tensor kind {rec['kind']!r}")
    with zf.open(info) as entry:
        major, _ = np.lib.format.read_magic(entry)
        read_header = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}[major]
        shape, _, dtype = read_header(entry)
        if dtype.str != rec["dtype"] or list(shape) != rec["shape"]:
            raise ValueError("a tensor entry does not match its description")
        needed = entry.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if info.file_size != needed:
            raise _EntryError(info.filename, f"declares {info.file_size} bytes, but its tensor record ({dtype}, "
                                             f"shape {list(shape)}) needs {needed}")
        entry.seek(0)
        return np.lib.format.read_array(entry, allow_pickle=False)


def _read_payload(zf):
    data = json.loads(zf.read(DATA))
    records = data["tensors"]
    arrays = [_read_npy(zf, zf.getinfo(f"{PREFIX}tensors/{i}.npy"), rec) for i, rec in enumerate(records)]
    for rec in records:
        if rec["kind"] != "ndarray":
            rec["dtype"] = dt.bfloat16 if rec.get("graphnet_dtype") == "bfloat16" else dt.as_dtype(
                np.dtype(rec["dtype"]))
            rec["device"] = as_device(rec["device"])
            rec["requires_grad"] = bool(rec["requires_grad"])
    return data, arrays, (zf.read(OBJECTS) if data["objects"] else None)


def _check_marker(zf, name, head):
    try:
        marker = json.loads(zf.read(MARKER))
        fmt, version = marker["format"], int(marker["version"])
    except Exception as e:
        raise _corrupted(name, e) from None
    if fmt != FORMAT:
        raise _foreign(name, head)
    if version > VERSION:
        raise CheckpointError(f"graphnet.load: {name} was written by a newer graphnet (checkpoint format version "
                              f"{version}; this one reads up to {VERSION}). Upgrade graphnet to load it.")


def _open_zip(stream, name):
    """(the zip archive, the file's first bytes); a file that is no zip is reported as damaged or foreign."""
    start = stream.tell()
    head = stream.read(256)
    stream.seek(start)
    try:
        return zipfile.ZipFile(stream), head
    except Exception as e:
        raise (_corrupted(name, e) if _looks_ours(head) or _looks_torch(head) else _foreign(name, head)) from None


def _read_archive(zf, stream, name, head):
    """(data JSON, arrays, pickled-objects bytes or None); every way a damaged file can fail becomes one error."""
    names = zf.namelist()
    if MARKER not in names:
        raise _corrupted(name, "the format marker is missing") if _looks_ours(head) else _foreign(name, head, names)
    try:
        _check_layout(zf, stream)
        _check_marker(zf, name, head)
        return _read_payload(zf)
    except _EntryError as e:
        raise _refusal(name, e) from None
    except CheckpointError:
        raise
    except Exception as e:
        raise _corrupted(name, f"{type(e).__name__}: {e}") from None


def _read_torch(read, name):
    """What `read()` finds in a torch.save file (zip or legacy), read with weights_only=True's rules; damage becomes
    one error naming the file."""
    try:
        return read()
    except torch_format.RefusedGlobal:
        raise
    except _EntryError as e:
        raise _refusal(name, e, "torch.save") from None
    except torch_format.OversizedStorageError as e:
        raise CheckpointError(f"graphnet.load: {name} is refused before reading: {e}. A torch.save file never "
                              "declares more than it holds, so the file is truncated or was altered (or built to "
                              "exhaust memory).") from None
    except RecursionError:
        raise _corrupted(name, "its pickle nests too deeply") from None
    except RuntimeError:  # map_location's own errors (a CUDA tensor on a machine without CUDA)
        raise
    except Exception as e:
        raise _corrupted(name, f"{type(e).__name__}: {e}") from None


def _read_zip_torch(zf, stream, folder, name, place, mmap_path):
    _check_layout(zf, stream)
    return torch_format.Reader(zf, stream, folder, name, place, mmap_path).load()


def _read_legacy_torch(f, stream, name, place, mmap, kind):
    """A file whose first bytes `sniff` as `kind`: a legacy (pre-1.6, non-zip) torch.save file, or torch's refusals
    of one (mmap, a wrong magic number)."""
    if mmap:
        f_name = f"{f}, " if isinstance(f, str) else ""
        raise RuntimeError("mmap can only be used with files saved with "
                           f"`torch.save({f_name}_use_new_zipfile_serialization=True), please torch.save your "
                           "checkpoint with this option in order to use mmap.")
    if kind == "truncated":
        raise _corrupted(name, "it ends inside the magic number of a legacy torch.save file")
    if kind != "legacy":
        raise _corrupted(name, f"invalid magic number: it starts with a pickle of {kind}, where a legacy torch.save "
                               f"file has {torch_legacy.MAGIC_NUMBER:#x}")
    return _read_torch(lambda: torch_legacy.LegacyReader(stream, name, place).load(), name)


def _move(t, target):
    target = as_device(target)
    if target == CPU:
        return t
    from .runtime.cuda_runtime import is_available

    if not is_available():
        raise RuntimeError("Attempting to deserialize object on a CUDA device but graphnet.cuda.is_available() is "
                           "False. If you are running on a CPU-only machine, please use graphnet.load with "
                           "map_location=graphnet.device('cpu') to map your tensors to the CPU.")
    return t.to(target)


def _placer(map_location):
    """A function (cpu tensor, saved device string) -> tensor where map_location says it goes, as torch.load."""
    if map_location is None:
        return _move
    if isinstance(map_location, dict):
        return lambda t, loc: _move(t, map_location.get(loc, loc))
    if callable(map_location):
        return lambda t, loc: _move(t, loc) if (out := map_location(t, loc)) is None else out
    return lambda t, loc: _move(t, map_location)


def _build_tensor(arr, rec, place):
    """A tensor (or Parameter) from its array and record, on the device `place` picks; ndarrays stay arrays."""
    if rec["kind"] == "ndarray":
        return arr
    t = place(Tensor._wrap(arr, rec["dtype"]), str(rec["device"]))
    if rec["requires_grad"]:
        t.requires_grad = True
    if rec["kind"] == "parameter":
        from .nn import Parameter

        t = Parameter(t, requires_grad=rec["requires_grad"])
    return t


_PICKLED_TENSORS = {("graphnet.frontend.tensor", "_rebuild"): "tensor",
                    ("graphnet.nn.parameter", "_rebuild_parameter"): "parameter"}


class _Unpickler(pickle.Unpickler):
    """Unpickles trusted objects, sending their tensors where map_location says."""

    def __init__(self, file, place, **kwargs):
        super().__init__(file, **kwargs)
        self._place = place

    def find_class(self, module, name):
        kind = _PICKLED_TENSORS.get((module, name))
        if kind is not None:
            return lambda arr, dtype_name, loc, requires_grad: _build_tensor(
                arr, {"kind": kind, "dtype": dt.from_name(dtype_name), "device": loc, "requires_grad": requires_grad},
                self._place)
        return super().find_class(module, name)


# Globals a weights_only load admits in a pickled object besides the user's safe globals: NumPy's own array
# reconstruction (a Parameter pickles its values as an ndarray) and plain containers.
_SAFE_BY_DEFAULT = {("collections", "OrderedDict"), ("builtins", "set"), ("__builtin__", "set"),
                    ("builtins", "frozenset"), ("builtins", "slice"), ("_codecs", "encode"), ("numpy", "ndarray"),
                    ("numpy", "dtype"), ("numpy._core.multiarray", "_reconstruct"),
                    ("numpy.core.multiarray", "_reconstruct")}
_user_safe_globals = []  # what add_safe_globals / safe_globals admitted: objects, or (object, "module.name")


def _global_name(entry):
    obj, name = entry if isinstance(entry, tuple) else (entry, None)
    return obj, name or f"{obj.__module__}.{obj.__qualname__}"


def add_safe_globals(safe_globals):
    """Admit these classes/functions (or (object, "module.name") pairs) in pickled objects that weights_only=True
    loads (torch.serialization.add_safe_globals): a whole saved model whose classes you trust."""
    for entry in safe_globals:
        if not callable(entry[0] if isinstance(entry, tuple) else entry):
            raise TypeError(f"add_safe_globals: expected classes or functions, got {entry!r}")
    _user_safe_globals.extend(safe_globals)


def get_safe_globals():
    return list(_user_safe_globals)


def clear_safe_globals():
    _user_safe_globals.clear()


class safe_globals:  # noqa: N801 - PyTorch's name for the context manager
    """`with graphnet.serialization.safe_globals([Net, nn.Linear]): graphnet.load(f)` admits them for the block."""

    def __init__(self, safe_globals):
        self.safe_globals = list(safe_globals)

    def __enter__(self):
        self._saved = list(_user_safe_globals)
        add_safe_globals(self.safe_globals)

    def __exit__(self, *exc):
        _user_safe_globals[:] = self._saved
        return False


class _WeightsOnlyUnpickler(_Unpickler):
    """Admits graphnet's tensor rebuilders, plain containers and the safe globals, looked up by name (nothing is
    imported); any other global raises naming it, before anything runs."""

    def __init__(self, file, place, what, **kwargs):
        super().__init__(file, place, **kwargs)
        self._what = what
        self._allowed = {name: obj for obj, name in map(_global_name, _user_safe_globals)}

    def find_class(self, module, name):
        if (module, name) in _PICKLED_TENSORS or (module, name) in _SAFE_BY_DEFAULT:
            return super().find_class(module, name)
        obj = self._allowed.get(f"{module}.{name}")
        if obj is None:
            raise pickle.UnpicklingError(
                f"Weights only load failed: {self._what}. Unsupported global: GLOBAL "
                f"{module}.{name} was not an allowed global by default. Please use "
                f"`graphnet.serialization.add_safe_globals([{name}])` or the "
                f"`graphnet.serialization.safe_globals([{name}])` context manager to allowlist this global if you "
                "trust this class/function, or pass weights_only=False only if you trust the source of the file "
                "(it can execute arbitrary code); or save model.state_dict() instead of the model.")
        return obj


def _unpickle(raw, types, name, weights_only, place, pickle_module, pickle_args):
    if raw is None:
        return []
    if weights_only:
        what = f"{name} holds pickled objects ({', '.join(map(str, types))})"
        return _WeightsOnlyUnpickler(io.BytesIO(raw), place, what, **pickle_args).load()
    if pickle_module not in (None, pickle):
        return pickle_module.loads(raw, **pickle_args)
    return _Unpickler(io.BytesIO(raw), place, **pickle_args).load()


def _children(node):
    if type(node) is not dict:
        return ()
    tag = node["t"]
    if tag in _SEQS:
        return node["v"]
    if tag in _MAPS:
        return [x for pair in node["v"] for x in pair]
    return ()


def _decode_node(node, built, tensors, objects):
    if type(node) is not dict:
        if type(node) not in _SCALARS:
            raise ValueError(f"unexpected {type(node).__name__} in the object tree")
        return node
    tag = node["t"]
    if tag in _SEQS:
        return _SEQS[tag](built[id(c)] for c in node["v"])
    if tag in _MAPS:
        return _MAPS[tag]((built[id(k)], built[id(v)]) for k, v in node["v"])
    if tag in ("tensor", "object"):
        table, ref = (tensors if tag == "tensor" else objects), node["ref"]
        if type(ref) is not int or not 0 <= ref < len(table):
            raise ValueError(f"bad {tag} reference {ref!r}")
        return table[ref]
    return _LEAF_TAGS[tag](node)


def _decode(root, tensors, objects):
    """Rebuild the saved object from its JSON tree, children before parents (no recursion)."""
    order, stack = [], [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(_children(node))
    built = {}
    for node in reversed(order):
        built[id(node)] = _decode_node(node, built, tensors, objects)
    return built[id(root)]


def _open_source(f, stack):
    """A seekable binary stream for `f` (a path or a file object) and the name errors call it by."""
    if isinstance(f, (str, os.PathLike)):
        return stack.enter_context(open(f, "rb")), repr(os.fspath(f))
    if not hasattr(f, "read"):
        raise TypeError(f"load: f must be a path or a readable binary file object, got {type(f).__name__}")
    name = repr(f.name) if isinstance(getattr(f, "name", None), str) else "the file object"
    seekable = getattr(f, "seekable", lambda: False)()
    return (f if seekable else io.BytesIO(f.read())), name


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Load what `save` wrote, or a torch.save file. Tensors go where `map_location` says (a device, a str, a dict or
    a callable).

    weights_only (default True) refuses pickled objects (whole modules) unless every class and function they name was
    allowlisted with add_safe_globals/safe_globals; pass False only for files you trust. A
    torch.save file (zip or legacy pre-1.6) is always read with weights_only=True's rules (no code runs); mmap=True
    maps a zip file's storages.
    """
    weights_only = True if weights_only is None else weights_only
    place = _placer(map_location)
    with contextlib.ExitStack() as stack:
        stream, name = _open_source(f, stack)
        start = stream.tell()
        kind = torch_legacy.sniff(stream.read(256))
        stream.seek(start)
        if kind is not None:
            return _read_legacy_torch(f, stream, name, place, mmap, kind)
        zf, head = _open_zip(stream, name)
        stack.enter_context(zf)
        folder = None if MARKER in zf.namelist() else torch_format.archive_folder(zf.namelist())
        if folder is not None:
            if mmap and not isinstance(f, (str, os.PathLike)):
                raise ValueError("f must be a file path in order to use the mmap argument")
            mmap_path = os.fspath(f) if mmap else None
            return _read_torch(lambda: _read_zip_torch(zf, stream, folder, name, place, mmap_path), name)
        data, arrays, object_bytes = _read_archive(zf, stream, name, head)
    tensors = [_build_tensor(arr, rec, place) for arr, rec in zip(arrays, data["tensors"])]
    objects = _unpickle(object_bytes, data["objects"], name, weights_only, place, pickle_module, pickle_load_args)
    try:
        return _decode(data["root"], tensors, objects)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        raise _corrupted(name, f"{type(e).__name__}: {e}") from None
