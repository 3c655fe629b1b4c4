"""graphnet.load of legacy (pre-1.6, non-zip) torch.save files without PyTorch: the committed legacy_*.pt files (same
objects as their zip twins), storage views, map_location, torch's mmap refusal, and damaged or malicious files."""
import io
import pathlib
import pickle
import struct
import tracemalloc

import numpy as np
import pytest
from torch_twins import System, tensor_pickle

import graphnet
from graphnet.core import dtype as dt

DATA = pathlib.Path(__file__).parent / "data"
EXPECTED = np.load(DATA / "expected.npz")
CORRUPT = "truncated or corrupted"
MAGIC = 0x1950A86A20F9469CFC6C
DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64")


def _expected(prefix):
    return {k[len(prefix) + 1:]: EXPECTED[k] for k in EXPECTED.files if k.startswith(prefix + "/")}


def _offset(t):
    """The element offset of a loaded view into its storage (graphnet has no Tensor.storage_offset)."""
    return (t._data.__array_interface__["data"][0] - t._base._data.__array_interface__["data"][0]) // t._data.itemsize


def _legacy(obj_pickle, keys=None, storages=(), magic=MAGIC, version=1001):
    """A legacy torch.save stream: header pickles, the object pickle, the key list, then (count, bytes) storages."""
    head = b"".join(pickle.dumps(x, 2) for x in (magic, version, {"protocol_version": 1001, "little_endian": True}))
    data = b"".join(struct.pack("<q", count) + raw for count, raw in storages)
    return head + obj_pickle + pickle.dumps(["0"] if keys is None else keys, 2) + data


def _floats(n):
    return n, np.arange(n, dtype="<f4").tobytes()


# ---- the committed files -------------------------------------------------------------------------------------------
def test_legacy_views_share_one_storage_with_strides_and_offsets():
    views = graphnet.load(DATA / "legacy_views.pt")
    expected = _expected("views")
    assert list(views) == list(expected)
    for k, v in views.items():
        assert v.dtype == graphnet.float32
        np.testing.assert_array_equal(v.numpy(), expected[k])
    assert views["t"].stride() == (1, 6) and views["strided"].stride() == (12, 2) and views["scalar"].dim() == 0
    assert _offset(views["strided"]) == 1 and _offset(views["col"]) == 3 and _offset(views["scalar"]) == 7
    views["x"][2, 3] = -1.0  # one storage: every view sees the write
    assert float(views["row"][3]) == -1.0 and float(views["col"][2]) == -1.0 and float(views["t"][3, 2]) == -1.0


def test_legacy_every_dtype():
    out = graphnet.load(DATA / "legacy_dtypes.pt")
    expected = _expected("dtypes")
    for name in DTYPES:
        assert out[name].dtype == dt.from_name(name), name
        np.testing.assert_array_equal(out[name].numpy().astype(np.float64), expected[name].astype(np.float64))
    np.testing.assert_array_equal(out["bfloat16_values"].numpy(), expected["bfloat16_values"])
    np.testing.assert_array_equal(out["float32_values"].numpy(), expected["float32_values"])


def test_legacy_file_equals_its_zip_twin():
    for name in ("views", "dtypes"):
        legacy, zipped = graphnet.load(DATA / f"legacy_{name}.pt"), graphnet.load(DATA / f"{name}.pt")
        assert list(legacy) == list(zipped)
        for k in zipped:
            a, b = legacy[k], zipped[k]
            assert (a.dtype, a.shape, a.stride(), a.requires_grad) == (b.dtype, b.shape, b.stride(), b.requires_grad)
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_legacy_file_object_and_map_location():
    raw = (DATA / "legacy_views.pt").read_bytes()
    seen = []
    out = graphnet.load(io.BytesIO(raw), map_location=lambda t, loc: seen.append(loc))
    assert set(seen) == {"cpu"} and len(seen) == len(out) and out["x"].device == graphnet.device("cpu")
    assert graphnet.load(io.BytesIO(raw), map_location={"cpu": "cpu"})["t"].device.type == "cpu"
    assert graphnet.load(io.BytesIO(raw), map_location="cpu")["col"].tolist() == _expected("views")["col"].tolist()


def test_legacy_cuda_tensor_goes_where_map_location_says(monkeypatch):
    from graphnet.runtime import cuda_runtime

    monkeypatch.setattr(cuda_runtime, "is_available", lambda: False)
    raw = _legacy(tensor_pickle("FloatStorage", 3, (3,), (1,), location="cuda:0", view=None), storages=[_floats(3)])
    with pytest.raises(RuntimeError, match=r"map_location=graphnet.device\('cpu'\)"):
        graphnet.load(io.BytesIO(raw))
    assert graphnet.load(io.BytesIO(raw), map_location={"cuda:0": "cpu"}).tolist() == [0.0, 1.0, 2.0]


def test_legacy_mmap_is_refused_as_torch_refuses_it(tmp_path):
    path = tmp_path / "legacy.pt"
    path.write_bytes((DATA / "legacy_views.pt").read_bytes())
    with pytest.raises(RuntimeError, match=rf"^mmap can only be used with files saved with `torch.save\({path}, "
                                           r"_use_new_zipfile_serialization=True\), please torch.save your "
                                           r"checkpoint with this option in order to use mmap.$"):
        graphnet.load(str(path), mmap=True)
    with pytest.raises(RuntimeError, match=r"`torch.save\(_use_new_zipfile_serialization=True\)"):
        graphnet.load(path, mmap=True)


# ---- files built here ----------------------------------------------------------------------------------------------
def test_hand_built_legacy_tensor_with_strides_and_offset():
    raw = _legacy(tensor_pickle("IntStorage", 10, (2, 3), (1, 3), offset=1, view=None),
                  storages=[(10, np.arange(10, dtype="<i4").tobytes())])
    out = graphnet.load(io.BytesIO(raw))
    np.testing.assert_array_equal(out.numpy(), np.arange(10, dtype=np.int32)[1:][np.array([[0, 3, 6], [1, 4, 7]])])


def test_old_storage_views_share_their_root():
    """Files of torch < 1.0 name storage views: (view key, element offset, numel) of a root storage."""
    a = tensor_pickle("FloatStorage", 8, (4,), (1,), view=None)[:-1]  # without STOP: the list below holds both
    b = tensor_pickle("FloatStorage", 8, (2,), (1,), offset=1, view=("v", 4, 3))[2:-1]
    raw = _legacy(b"\x80\x02(" + a[2:] + b + b"l.", storages=[_floats(8)])
    root, view = graphnet.load(io.BytesIO(raw))
    assert root.tolist() == [0.0, 1.0, 2.0, 3.0] and view.tolist() == [5.0, 6.0]
    root._base[5] = -1.0
    assert float(view[0]) == -1.0
    past = tensor_pickle("FloatStorage", 8, (3,), (1,), offset=1, view=("v", 4, 3))
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*past the end of its storage 'v' \\(3 elements\\)"):
        graphnet.load(io.BytesIO(_legacy(past, storages=[_floats(8)])))
    outside = tensor_pickle("FloatStorage", 8, (1,), (1,), view=("v", 6, 3))
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*storage '0' has an invalid view"):
        graphnet.load(io.BytesIO(_legacy(outside, storages=[_floats(8)])))


def test_legacy_view_past_its_storage_is_corrupt():
    raw = _legacy(tensor_pickle("FloatStorage", 4, (3,), (2,), view=None), storages=[_floats(4)])
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*past the end of its storage '0'"):
        graphnet.load(io.BytesIO(raw))


def test_legacy_oversized_storage_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.pt"
    path.write_bytes(_legacy(tensor_pickle("DoubleStorage", 2**40, (2**40,), (1,), view=None),
                             storages=[(2**40, b"\0" * 64)]))
    tracemalloc.start()
    try:
        with pytest.raises(graphnet.serialization.CheckpointError,
                           match=r"huge.pt' is refused before reading: storage '0' declares 1099511627776 elements "
                                 r"of 8 bytes \(8796093022208 bytes\), but the file holds only 64 bytes for it"):
            graphnet.load(path)
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()


def test_bit_flips_raise_the_documented_errors():
    """No flipped byte escapes as another exception (a NumPy or struct error); the legacy format has no checksum,
    so a flip inside the data loads changed values."""
    raw = (DATA / "legacy_dtypes.pt").read_bytes()
    for pos in range(0, len(raw), 3):
        bad = bytearray(raw)
        bad[pos] ^= 0xFF
        try:
            graphnet.load(io.BytesIO(bytes(bad)))
        except graphnet.serialization.CheckpointError as e:
            assert CORRUPT in str(e) or "refused before reading" in str(e) or "not a graphnet" in str(e), (pos, e)
        except pickle.UnpicklingError as e:
            assert "not admitted" in str(e), (pos, e)
        except RuntimeError as e:  # a flipped device tag: torch.device's own error, as torch.load raises one
            assert "device string" in str(e), (pos, e)


def test_legacy_integer_tensor_cannot_require_grad():
    raw = _legacy(tensor_pickle("LongStorage", 2, (2,), (1,), view=None).replace(b"\x89c", b"\x88c"),
                  storages=[(2, b"\0" * 16)])
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*a tensor of dtype int64 requires grad"):
        graphnet.load(io.BytesIO(raw))


def test_legacy_storage_count_must_match_its_description():
    raw = _legacy(tensor_pickle("FloatStorage", 4, (4,), (1,), view=None), storages=[(3, b"\0" * 16)])
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*storage '0' holds 3 elements where its description says 4"):
        graphnet.load(io.BytesIO(raw))


@pytest.mark.parametrize("keys,why", [(["0", "1"], "storage '1' has data but no tensor or storage describes it"),
                                      ([], "storage '0' is used by a tensor but has no data in the file"),
                                      ("0", "not a list of distinct strings")])
def test_legacy_key_list_must_match_the_storages(keys, why):
    raw = _legacy(tensor_pickle("FloatStorage", 2, (2,), (1,), view=None), keys=keys, storages=[_floats(2)] * 2)
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*{why}"):
        graphnet.load(io.BytesIO(raw))


def test_truncated_legacy_files(tmp_path):
    raw = (DATA / "legacy_views.pt").read_bytes()
    path = tmp_path / "cut.pt"
    for cut in sorted({1, 5, 14, 15, 16, 20, 100, 300, len(raw) // 2, len(raw) - 97, len(raw) - 8, len(raw) - 1}):
        path.write_bytes(raw[:cut])
        with pytest.raises(graphnet.serialization.CheckpointError,
                           match=f"{CORRUPT}|refused before reading.*the file holds only") as err:
            graphnet.load(path)
        assert "cut.pt" in str(err.value), cut


def test_wrong_magic_number_and_protocol_version(tmp_path):
    raw = (DATA / "legacy_views.pt").read_bytes()
    path = tmp_path / "magic.pt"
    path.write_bytes(raw[:5] + bytes([raw[5] ^ 1]) + raw[6:])
    with pytest.raises(graphnet.serialization.CheckpointError,
                       match=rf"magic.pt' is {CORRUPT} \(invalid magic number: it starts with a pickle of \d+, "
                             r"where a legacy torch.save file has 0x1950a86a20f9469cfc6c\)"):
        graphnet.load(path)
    obj = tensor_pickle("FloatStorage", 2, (2,), (1,), view=None)
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*invalid magic number.*pickle of 12345"):
        graphnet.load(io.BytesIO(_legacy(obj, magic=12345, storages=[_floats(2)])))
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*invalid protocol version 1000"):
        graphnet.load(io.BytesIO(_legacy(obj, version=1000, storages=[_floats(2)])))


def test_legacy_magic_number_of_any_pickle_protocol():
    obj = tensor_pickle("FloatStorage", 2, (2,), (1,), view=None)
    raw = _legacy(obj, storages=[_floats(2)])
    raw = pickle.dumps(MAGIC, protocol=5) + raw[len(pickle.dumps(MAGIC, 2)):]
    assert graphnet.load(io.BytesIO(raw)).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("where", ["object", "sys_info", "keys"])
def test_malicious_legacy_pickle_is_refused_without_running(tmp_path, where):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"w": System(f"touch {marker}")}, protocol=2)
    obj = tensor_pickle("FloatStorage", 2, (2,), (1,), view=None)
    raw = _legacy(evil if where == "object" else obj, storages=[_floats(2)])
    if where == "sys_info":
        start = len(pickle.dumps(MAGIC, 2) + pickle.dumps(1001, 2))
        raw = raw[:start] + evil + raw[raw.index(obj):]
    elif where == "keys":
        raw = raw[:raw.index(obj) + len(obj)] + evil
    path = tmp_path / "evil.pt"
    path.write_bytes(raw)
    for weights_only in (True, False):
        with pytest.raises(pickle.UnpicklingError, match=r"evil.pt' uses the global (posix|os)\.system.*not admitted"):
            graphnet.load(path, weights_only=weights_only)
    assert not marker.exists()


def test_other_pickles_are_still_foreign(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"a": [1, 2]}, protocol=4))
    with pytest.raises(graphnet.serialization.CheckpointError, match="not a graphnet checkpoint.*pickle file"):
        graphnet.load(path)
