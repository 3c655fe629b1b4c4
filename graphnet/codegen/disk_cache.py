"""graphnet's on-disk cache of generated source, call-site records and (through Numba) machine code.

Nothing in it is trusted: a file of graphnet's is used only when it matches the content hash it is named by (or
carries), and one of Numba's only if it loads; a damaged one is removed and rebuilt with one warning rather than
failing every later run. Writes are atomic (temp file + rename), and the temp files of writes cut short are removed
by the next process. The directory is created user-only; one that cannot be created or written is replaced by a
private temporary directory.
"""
import atexit
import contextlib
import glob
import hashlib
import os
import shutil
import tempfile
import uuid
import warnings

from numba.core import caching

_DIRS = {}  # configured directory -> the one in use (itself, or its private fallback), checked once per process
_INTACT = {}  # path -> its text, once verified (or written) in this process


def digest(text):
    """The content hash that names a cache entry."""
    return _hash(text.encode())


def _hash(data):
    return hashlib.sha256(data).hexdigest()[:20]


def directory():
    """The kernel cache, `$GRAPHNET_CACHE_DIR/kernels` (default ~/.cache/graphnet/kernels), or the private fallback
    that replaces it for this process when it cannot be written."""
    root = os.environ.get("GRAPHNET_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "graphnet")
    path = os.path.join(root, "kernels")
    found = _DIRS.get(path)
    if found is None or not os.path.isdir(found):  # first use in this process, or removed since
        found = _DIRS[path] = _usable(root, path)
        _sweep(found)
    return found


def _usable(root, path):
    try:
        for p in (root, path):
            os.makedirs(p, mode=0o700, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return path
    except OSError as e:
        fallback = tempfile.mkdtemp(prefix="graphnet-cache-")
        atexit.register(shutil.rmtree, fallback, ignore_errors=True)
        warnings.warn(f"graphnet: cannot write the cache directory {path} ({e}); compiled kernels are cached in "
                      f"{fallback} for this process only. Set GRAPHNET_CACHE_DIR to a writable directory to keep them.",
                      stacklevel=2)
        return fallback


def _sweep(path):
    """Remove the temp files (`<entry>.<id>.<pid>.tmp`) of writes whose process is gone."""
    for entry in os.scandir(path):
        pid = entry.name.rsplit(".", 2)[1] if entry.name.endswith(".tmp") else ""
        if pid.isdigit() and not _running(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _running(pid):
    if os.name != "posix":  # signal 0 only probes on POSIX (os.kill would end the process on Windows)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        pass
    return True


def write(path, text):
    """Write `text` to `path` atomically: a reader sees the old file or the whole new one, never a part."""
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(text.encode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _INTACT[path] = text


def read(path, key):
    """The text of `path` if its digest is `key`, the hash it is named by; None if it is missing or damaged (a damaged
    one is removed, with one warning: the caller rebuilds it)."""
    return _verified(path, lambda data: _hash(data) == key, f"its content does not match its hash {key}")


def write_signed(path, text):
    """Write `text` to an entry not named by its content (the record of another entry), after a line with its
    digest."""
    write(path, f"{digest(text)}\n{text}")


def read_signed(path):
    """The text `write_signed` wrote to `path`, verified against the digest it carries; None as for `read`."""
    signed = _verified(path, _signed, "its content does not match the hash it carries")
    return None if signed is None else signed.partition("\n")[2]


def _signed(data):
    key, _, body = data.partition(b"\n")
    return _hash(body).encode() == key


def _verified(path, intact, why):
    """The text of `path`, read and checked by `intact` (on its bytes) once per process."""
    if path in _INTACT:
        return _INTACT[path]
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    if intact(data):
        with contextlib.suppress(UnicodeDecodeError):
            _INTACT[path] = data.decode()
            return _INTACT[path]
    return damaged(path, why)


def damaged(path, why):
    """Remove the damaged cache file `path`, with one warning, for the caller to rebuild; None."""
    _INTACT.pop(path, None)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    warnings.warn(f"graphnet: cache file {path} was damaged ({why}); it was removed and is rebuilt", stacklevel=2)


def guard_numba(module):
    """Make a damaged Numba cache file of a function `module` defines a cache miss instead of an error on every
    later run: its files are removed (one warning) and Numba compiles and saves the function again."""
    for obj in list(vars(module).values()):
        cache = getattr(obj, "_cache", None)
        if isinstance(cache, caching.Cache) and obj.py_func.__module__ == module.__name__:
            obj._cache = _GuardedCache(cache)


def forget_numba(dispatcher):
    """Remove what Numba's cache holds for `dispatcher` (nothing for one without a cache), so that it is compiled
    again: a driver whose record of call sites is lost must be typed again to rebuild the record."""
    if isinstance(dispatcher._cache, (caching.Cache, _GuardedCache)):
        _remove_numba_files(dispatcher._cache)


def _remove_numba_files(cache):
    index = cache._cache_file._index_path
    for p in [index, *glob.glob(glob.escape(index[:-len(".nbi")]) + ".*.nbc")]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


class _GuardedCache:
    """Numba's cache of one function, but for loading: an entry that fails to load is a miss, not an error."""

    def __init__(self, numba_cache):
        self._numba = numba_cache

    def __getattr__(self, name):
        return getattr(self._numba, name)

    def load_overload(self, sig, target_context):
        try:
            return self._numba.load_overload(sig, target_context)
        except Exception as e:  # truncated or garbled: a pickle, EOF or LLVM error, whichever part was hit
            _remove_numba_files(self._numba)
            why = " ".join(f"{type(e).__name__}: {e}".split())
            warnings.warn(f"graphnet: Numba cache file {self._numba._cache_file._index_path} or one of its data files "
                          f"was damaged ({why}); they were removed and are rebuilt", stacklevel=2)
            return None
