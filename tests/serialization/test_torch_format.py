"""graphnet.load of torch.save files without PyTorch: the committed files in data/, weights_only's refusals, shared
views, strides, map_location, mmap and damaged files; save(format='torch') read back by graphnet itself."""
import collections
import io
import os
import pathlib
import pickle
import struct
import zipfile

import numpy as np
import pytest
from torch_twins import System, small, tensor_pickle

import graphnet
from graphnet import nn
from graphnet.core import dtype as dt

DATA = pathlib.Path(__file__).parent / "data"
EXPECTED = np.load(DATA / "expected.npz")
CORRUPT = "truncated or corrupted"


def _expected(prefix):
    return {k[len(prefix) + 1:]: EXPECTED[k] for k in EXPECTED.files if k.startswith(prefix + "/")}


def _values(t):
    return t.detach().numpy()


def _offset(t):
    """The element offset of a loaded view into its storage (graphnet has no Tensor.storage_offset)."""
    return (t._data.__array_interface__["data"][0] - t._base._data.__array_interface__["data"][0]) // t._data.itemsize




def test_state_dict_file_loads_into_the_graphnet_twin():
    sd = graphnet.load(DATA / "state_dict.pt")
    assert type(sd) is collections.OrderedDict
    expected = _expected("state_dict")
    assert list(sd) == list(expected)
    for k, v in sd.items():
        np.testing.assert_array_equal(_values(v), expected[k])
    assert sd["bn.num_batches_tracked"].dtype == graphnet.int64 and int(sd["bn.num_batches_tracked"]) == 1
    model = small(nn)
    assert model.load_state_dict(sd) == ([], [])
    np.testing.assert_array_equal(_values(model.lstm.weight_ih_l0), expected["lstm.weight_ih_l0"])
    np.testing.assert_array_equal(_values(model.attn.in_proj_weight), expected["attn.in_proj_weight"])
    np.testing.assert_array_equal(_values(model.bn.running_var), expected["bn.running_var"])


def test_state_dict_strict_false_and_size_mismatch():
    sd = graphnet.load(DATA / "state_dict.pt")
    del sd["fc.bias"]
    sd["extra"] = graphnet.zeros(1)
    missing, unexpected = small(nn).load_state_dict(sd, strict=False)
    assert (missing, unexpected) == (["fc.bias"], ["extra"])
    with pytest.raises(RuntimeError, match='(?s)Missing key.*"fc.bias".*Unexpected key.*"extra"'):
        small(nn).load_state_dict(sd)
    model = small(nn)
    model.fc = nn.Linear(3, 5)
    with pytest.raises(RuntimeError, match=r"size mismatch for fc.weight: copying a param with shape "
                                           r"graphnet.Size\(\[2, 3\]\) from checkpoint, the shape in current model "
                                           r"is graphnet.Size\(\[5, 3\]\)"):
        model.load_state_dict(graphnet.load(DATA / "state_dict.pt"))


def test_optimizer_state_dict_loads_into_adam():
    state = graphnet.load(DATA / "optimizer.pt")
    expected = _expected("optimizer")
    assert state["param_groups"][0]["lr"] == 0.01 and state["param_groups"][0]["params"] == [0, 1]
    np.testing.assert_array_equal(_values(state["state"][0]["exp_avg"]), expected["state/0/exp_avg"])
    model = small(nn)
    opt = graphnet.optim.Adam(model.fc.parameters(), lr=0.01)
    opt.load_state_dict(state)
    np.testing.assert_array_equal(_values(opt.state_dict()["state"][1]["exp_avg_sq"]), expected["state/1/exp_avg_sq"])


def test_every_dtype():
    out = graphnet.load(DATA / "dtypes.pt")
    expected = _expected("dtypes")
    for name in ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"):
        assert out[name].dtype == dt.from_name(name), name
        np.testing.assert_array_equal(_values(out[name]).astype(np.float64), expected[name].astype(np.float64))
    np.testing.assert_array_equal(_values(out["bfloat16_values"]), expected["bfloat16_values"])
    np.testing.assert_array_equal(_values(out["float32_values"]), expected["float32_values"])


def test_views_share_one_storage_with_strides_and_offsets():
    views = graphnet.load(DATA / "views.pt")
    expected = _expected("views")
    for k, v in views.items():
        np.testing.assert_array_equal(_values(v), expected[k])
    assert views["t"].stride() == (1, 6) and views["strided"].stride() == (12, 2)
    assert _offset(views["strided"]) == 1 and _offset(views["col"]) == 3
    views["x"][2, 3] = -1.0  # one storage: every view sees the write
    assert float(views["row"][3]) == -1.0 and float(views["col"][2]) == -1.0 and float(views["t"][3, 2]) == -1.0


def test_misc_objects():
    misc = graphnet.load(DATA / "misc.pt")
    assert isinstance(misc["param"], nn.Parameter) and misc["param"].requires_grad
    assert misc["grad"].requires_grad and type(misc["grad"]) is graphnet.Tensor
    assert misc["dtype"] is graphnet.float16 and misc["device"] == graphnet.device("cpu")
    assert misc["size"] == graphnet.Size([2, 3]) and type(misc["size"]) is graphnet.Size
    nested = misc["nested"]
    assert nested[:4] == [1, 2.5, "s", None] and nested[4] == (True, b"by")
    assert type(nested[5]["k"]) is collections.OrderedDict and nested[5]["k"]["a"].tolist() == [7]
    assert tuple(misc["empty"].shape) == (0, 3)


def test_map_location():
    seen = []
    out = graphnet.load(DATA / "views.pt", map_location=lambda t, loc: seen.append(loc))
    assert set(seen) == {"cpu"} and out["x"].device == graphnet.device("cpu")
    assert graphnet.load(DATA / "views.pt", map_location="cpu")["x"].device.type == "cpu"
    assert graphnet.load(DATA / "views.pt", map_location={"cpu": "cpu"})["x"].device.type == "cpu"


def test_mmap_maps_the_storages_and_reads_lazily(tmp_path):
    views = graphnet.load(DATA / "views.pt", mmap=True)
    x = views["x"]._data
    while not isinstance(x, np.memmap):
        x = x.base
    np.testing.assert_array_equal(_values(views["strided"]), _expected("views")["strided"])
    views["x"][0, 0] = 5.0  # copy-on-write: the file is untouched
    assert float(views["t"][0, 0]) == 5.0 and graphnet.load(DATA / "views.pt")["x"][0, 0].item() == 0.0
    with pytest.raises(ValueError, match="mmap"):
        graphnet.load(io.BytesIO((DATA / "views.pt").read_bytes()), mmap=True)


# ---- files built here: refusals and damage -------------------------------------------------------------------------
def _torch_zip(pkl, storages=None, folder="archive", byteorder="little", compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{folder}/data.pkl", pkl)
        zf.writestr(f"{folder}/byteorder", byteorder)
        for key, data in (storages or {}).items():
            zf.writestr(f"{folder}/data/{key}", data, compress_type=compression)
        zf.writestr(f"{folder}/version", "3\n")
    return buf.getvalue()


def test_malicious_global_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(_torch_zip(pickle.dumps({"w": System(f"touch {marker}")}, protocol=2)))
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|os)\.system.*not admitted"):
        graphnet.load(path)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        graphnet.load(path, weights_only=False)
    assert not marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("numpy.core.multiarray", "_reconstruct"),
                                         ("torch._utils", "_rebuild_qtensor"), ("torch", "load")])
def test_other_globals_are_refused(module, name):
    pkl = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"."
    with pytest.raises(pickle.UnpicklingError, match=f"{module}.{name}"):
        graphnet.load(io.BytesIO(_torch_zip(pkl)))


def test_hand_built_tensor_with_strides_and_offset():
    data = np.arange(10, dtype=np.int32).tobytes()
    out = graphnet.load(io.BytesIO(_torch_zip(tensor_pickle("IntStorage", 10, (2, 3), (1, 3), offset=1),
                                              {"0": data})))
    np.testing.assert_array_equal(out.numpy(), np.arange(10, dtype=np.int32)[1:][np.array([[0, 3, 6], [1, 4, 7]])])


def test_cuda_tensor_needs_map_location_without_cuda(monkeypatch):
    from graphnet.runtime import cuda_runtime

    monkeypatch.setattr(cuda_runtime, "is_available", lambda: False)
    raw = _torch_zip(tensor_pickle("FloatStorage", 2, (2,), (1,), location="cuda:0"), {"0": b"\0" * 8})
    with pytest.raises(RuntimeError, match="map_location=graphnet.device\\('cpu'\\)"):
        graphnet.load(io.BytesIO(raw))
    seen = []
    out = graphnet.load(io.BytesIO(raw), map_location=lambda t, loc: seen.append(loc) or t)
    assert seen == ["cuda:0"] and out.device.type == "cpu" and out.tolist() == [0.0, 0.0]
    assert graphnet.load(io.BytesIO(raw), map_location={"cuda:0": "cpu"}).device.type == "cpu"


def test_big_endian_file():
    data = np.arange(4, dtype=">f8").tobytes()
    out = graphnet.load(io.BytesIO(_torch_zip(tensor_pickle("DoubleStorage", 4, (4,), (1,)), {"0": data},
                                              byteorder="big")))
    assert out.dtype == graphnet.float64 and out.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_compressed_storage_is_refused_before_reading():
    raw = _torch_zip(tensor_pickle("FloatStorage", 4096, (4096,), (1,)), {"0": b"\0" * 16384},
                     compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(RuntimeError, match=r"refused before reading: its entry 'archive/data/0' is compressed.*"
                                           r"torch.save never writes"):
        graphnet.load(io.BytesIO(raw))


def test_oversized_storage_is_refused_before_allocating():
    pkl = tensor_pickle("FloatStorage", 2**40, (2**40,), (1,))
    with pytest.raises(RuntimeError, match=r"refused before reading: storage '0' declares 1099511627776 elements"):
        graphnet.load(io.BytesIO(_torch_zip(pkl, {"0": b"\0" * 16})))


def test_view_past_its_storage_is_corrupt():
    pkl = tensor_pickle("FloatStorage", 4, (3,), (2,))
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*past the end of its storage"):
        graphnet.load(io.BytesIO(_torch_zip(pkl, {"0": b"\0" * 16})))


def test_missing_storage_entry_is_corrupt():
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*'archive/data/0'.*missing"):
        graphnet.load(io.BytesIO(_torch_zip(tensor_pickle("FloatStorage", 4, (4,), (1,)))))


def test_truncated_and_zero_length_files(tmp_path):
    raw = (DATA / "state_dict.pt").read_bytes()
    path = tmp_path / "cut.pt"
    for cut in sorted({0, 1, 10, 29, 40, 100, len(raw) // 2, len(raw) - 100, len(raw) - 22, len(raw) - 1}):
        path.write_bytes(raw[:cut])
        with pytest.raises(RuntimeError, match=CORRUPT) as err:
            graphnet.load(path)
        assert "cut.pt" in str(err.value)


def test_bit_flips_are_detected_or_harmless():
    raw = (DATA / "views.pt").read_bytes()
    expected = _expected("views")
    detected = 0
    for pos in range(0, len(raw), 5):
        bad = bytearray(raw)
        bad[pos] ^= 0xFF
        try:
            out = graphnet.load(io.BytesIO(bytes(bad)))
        except RuntimeError as e:  # CheckpointError, or a refused global (a flipped byte in a global's name)
            assert CORRUPT in str(e) or "refused" in str(e) or "not a graphnet checkpoint" in str(e), str(e)
            detected += 1
        except pickle.UnpicklingError as e:
            assert "not admitted" in str(e)
            detected += 1
        else:
            assert all(np.array_equal(_values(out[k]), expected[k]) for k in expected), pos
    assert detected > len(raw) // 5 * 0.5


def test_flipped_storage_byte_is_detected():
    raw = (DATA / "views.pt").read_bytes()
    pos = raw.index(np.arange(24, dtype=np.float32)[5:9].tobytes())
    bad = raw[:pos] + bytes([raw[pos] ^ 1]) + raw[pos + 1:]
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*CRC"):
        graphnet.load(io.BytesIO(bad))


# ---- save(format="torch") read back by graphnet (torch.load is in test_torch_interop.py) -----------------------------
def test_save_torch_format_roundtrip(tmp_path):
    x = graphnet.arange(12, dtype=graphnet.float32).reshape(3, 4)
    obj = {"x": x, "t": x.t(), "col": x[:, 1], "bf": graphnet.tensor([1.5, -2.0], dtype=graphnet.bfloat16),
           "p": nn.Parameter(graphnet.ones(2)), "meta": [graphnet.int64, graphnet.Size([1, 2]), b"b", {3, 4}],
           "sd": small(nn).state_dict()}
    path = tmp_path / "out.pt"
    graphnet.save(obj, path, format="torch")
    back = graphnet.load(path)
    assert back["t"].stride() == (1, 4) and _offset(back["col"]) == 1
    back["x"][0, 1] = 9.0
    assert float(back["t"][1, 0]) == 9.0 and float(back["col"][0]) == 9.0
    assert back["bf"].dtype == graphnet.bfloat16 and back["bf"].tolist() == [1.5, -2.0]
    assert isinstance(back["p"], nn.Parameter) and back["meta"] == [graphnet.int64, graphnet.Size([1, 2]), b"b", {3, 4}]
    model = small(nn)
    model.load_state_dict(back["sd"])
    assert list(os.listdir(tmp_path)) == ["out.pt"]  # written atomically: no temp file left
    with zipfile.ZipFile(path) as zf:  # storages are 64-byte aligned, as torch writes them
        for info in zf.infolist():
            if "/data/" in info.filename:
                name_len, extra_len = struct.unpack("<HH", path.read_bytes()[info.header_offset + 26:][:4])
                assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0


def test_save_torch_format_refuses_what_torch_cannot_read():
    with pytest.raises(TypeError, match=r"cannot store a numpy.ndarray"):
        graphnet.save({"a": np.zeros(2)}, io.BytesIO(), format="torch")
    with pytest.raises(ValueError, match="format must be 'graphnet' or 'torch'"):
        graphnet.save({}, io.BytesIO(), format="onnx")
