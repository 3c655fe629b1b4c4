"""Readers for MNIST's file formats: IDX (big-endian header, raw or gzip) and the `784 pixels then label` CSV."""
import gzip
import zlib

import numpy as np

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
# IDX type codes (third byte of the magic number) and their big-endian element types.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MAGIC_KIND = {IMAGES_MAGIC: "an image file (idx3-ubyte)", LABELS_MAGIC: "a label file (idx1-ubyte)"}


def _read_maybe_gzip(path):
    """The file's bytes, gunzipped when they start with the gzip signature (whatever the file is called)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: the gzip stream is truncated or corrupted ({e})") from None


def read_idx(path, expected_magic=None):
    """An IDX file as a native-endian ndarray; `expected_magic` (2051 images, 2049 labels) is checked if given."""
    raw = _read_maybe_gzip(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: only {len(raw)} bytes, too short for an IDX header; the file is truncated")
    magic, ndim, code = int.from_bytes(raw[:4], "big"), raw[3], raw[2]
    if raw[:2] != b"\0\0" or code not in _IDX_DTYPES or expected_magic not in (None, magic):
        want = f" (expected {expected_magic}, {_MAGIC_KIND.get(expected_magic, 'IDX')})" if expected_magic else ""
        raise ValueError(f"{path}: bad IDX magic number {magic}{want}; this is not an MNIST IDX file, or it is "
                         "corrupted")
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(f"{path}: the IDX header is truncated ({len(raw)} bytes, a {ndim}-d header needs {start})")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - start != need:
        raise ValueError(f"{path}: the IDX header says shape {dims} ({need} bytes of data) but the file holds "
                         f"{len(raw) - start} bytes; the file is truncated or corrupted")
    return np.frombuffer(raw, dtype, offset=start).reshape(dims).astype(dtype.newbyteorder("="))


def read_mnist_csv(path, side=28):
    """Rows of `side*side` pixel values 0-255 then the label: (uint8 images (N, side, side), int64 labels)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        try:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
        except ValueError as e:
            raise ValueError(f"{path}: not a CSV table of integers ({e})") from None
    if table.shape[1] != side * side + 1:
        raise ValueError(f"{path}: expected {side * side + 1} columns per row ({side}x{side} pixels then the label), "
                         f"got {table.shape[1]}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
        raise ValueError(f"{path}: pixel values must lie in 0..255")
    return pixels.astype(np.uint8).reshape(-1, side, side), labels
