"""graphnet.save / graphnet.load: exact round trips, the safe format's refusals, atomic writes, damaged files."""
import collections
import io
import json
import math
import os
import pickle
import re
import signal
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import graphnet
from graphnet import serialization
from graphnet.core import dtype as dt

CORRUPT = "truncated or corrupted"
FOREIGN = "not a graphnet checkpoint"
REFUSED = "refused before reading"
TENSOR_0, TENSOR_1 = (serialization.PREFIX + f"tensors/{i}.npy" for i in range(2))


def _roundtrip(obj, **load_kwargs):
    buf = io.BytesIO()
    graphnet.save(obj, buf)
    buf.seek(0)
    return graphnet.load(buf, **load_kwargs)


def _sample_tensor(d, shape):
    rng = np.random.default_rng(0)
    arr = np.asarray(rng.standard_normal(shape) * 100).astype(d.np)
    if d.is_floating_point and arr.size:
        arr.flat[0] = np.nan
    return graphnet.from_numpy(arr) if d.round is None else graphnet.tensor(arr, dtype=d)


@pytest.mark.parametrize("d", dt.ALL, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3, 4)])
def test_tensor_roundtrip_every_dtype(d, shape):
    t = _sample_tensor(d, shape)
    out = _roundtrip(t)
    assert isinstance(out, graphnet.Tensor) and out.dtype is d and tuple(out.shape) == shape
    np.testing.assert_array_equal(out.numpy(), t.numpy())
    assert not out.requires_grad


def test_requires_grad_and_noncontiguous_tensor():
    base = graphnet.randn(3, 4, dtype=graphnet.float64)
    w = graphnet.from_numpy(base.numpy().T)  # a transposed (Fortran-ordered) buffer
    w.requires_grad = True
    out = _roundtrip({"w": w})["w"]
    assert out.requires_grad and out.is_leaf and tuple(out.shape) == (4, 3)
    np.testing.assert_array_equal(out.detach().numpy(), base.numpy().T)


def test_nested_containers_and_scalars():
    obj = {
        "ints": [0, -1, 2**70, True, False, None],
        "floats": (1.5, -0.0, math.inf, -math.inf),
        "text": "héllo ✓ \u2028",
        3: {"nested": [[], (), {}, {"deep": [graphnet.ones(2)]}]},
        (1, "k"): frozenset({1, 2}),
        "set": {3, 4},
        "dtype": graphnet.int16,
        "device": graphnet.device("cpu"),
        "np_scalar": np.float32(2.5),
        "np_int": np.int64(-7),
        "array": np.arange(6, dtype=np.uint16).reshape(2, 3),
    }
    out = _roundtrip(obj)
    assert list(out) == list(obj)
    assert out["ints"] == obj["ints"] and type(out["ints"][2]) is int and out["ints"][3] is True
    assert out["floats"] == obj["floats"] and isinstance(out["floats"], tuple)
    assert math.copysign(1, out["floats"][1]) == -1
    assert out["text"] == obj["text"] and out[(1, "k")] == frozenset({1, 2}) and out["set"] == {3, 4}
    assert out[3]["nested"][:3] == [[], (), {}]
    np.testing.assert_array_equal(out[3]["nested"][3]["deep"][0].numpy(), np.ones(2, np.float32))
    assert out["dtype"] is graphnet.int16 and out["device"] == graphnet.device("cpu")
    assert type(out["np_scalar"]) is np.float32 and out["np_scalar"] == 2.5 and type(out["np_int"]) is np.int64
    assert out["array"].dtype == np.uint16 and np.array_equal(out["array"], obj["array"])


def test_nan_float_survives():
    assert math.isnan(_roundtrip([math.nan])[0])


def test_ordereddict_order_and_type():
    keys = ["zeta", "alpha", "mid", "beta"]
    od = collections.OrderedDict((k, graphnet.tensor([float(i)])) for i, k in enumerate(keys))
    out = _roundtrip(od)
    assert type(out) is collections.OrderedDict and list(out) == keys
    assert [v.item() for v in out.values()] == [0.0, 1.0, 2.0, 3.0]
    plain = _roundtrip({"b": 1, "a": 2})
    assert type(plain) is dict and list(plain) == ["b", "a"]


def test_shared_tensor_is_stored_once_and_stays_shared():
    t = graphnet.randn(4)
    out = _roundtrip({"a": t, "b": [t]})
    assert out["a"] is out["b"][0]


def test_state_dict_roundtrip_exact(tmp_path):
    model = graphnet.nn.Sequential(graphnet.nn.Linear(4, 3), graphnet.nn.ReLU(), graphnet.nn.Linear(3, 2))
    path = tmp_path / "model.pt"
    graphnet.save(model.state_dict(), path)
    sd = graphnet.load(path)
    assert list(sd) == list(model.state_dict())
    for k, v in model.state_dict().items():
        assert sd[k].dtype is v.dtype and np.array_equal(sd[k].numpy(), v.detach().numpy())
    fresh = graphnet.nn.Sequential(graphnet.nn.Linear(4, 3), graphnet.nn.ReLU(), graphnet.nn.Linear(3, 2))
    fresh.load_state_dict(sd)
    x = graphnet.randn(5, 4)
    np.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())


def test_parameter_in_plain_structure_loads_as_parameter():
    p = graphnet.nn.Parameter(graphnet.randn(2, 2))
    out = _roundtrip({"p": p})["p"]
    assert isinstance(out, graphnet.nn.Parameter) and out.requires_grad
    np.testing.assert_array_equal(out.detach().numpy(), p.detach().numpy())


def test_whole_module_needs_weights_only_false():
    model = graphnet.nn.Linear(3, 2)
    buf = io.BytesIO()
    graphnet.save(model, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match=r"holds pickled objects \(graphnet.nn.modules.linear.Linear\). "
                       r"Unsupported global: GLOBAL "
                       r"graphnet.nn.modules.linear.Linear was not an allowed global by default. Please use "
                       r"`graphnet.serialization.add_safe_globals\(\[Linear\]\)`"):
        graphnet.load(buf)
    buf.seek(0)
    loaded = graphnet.load(buf, weights_only=False)
    assert isinstance(loaded, graphnet.nn.Linear) and isinstance(loaded.weight, graphnet.nn.Parameter)
    x = graphnet.randn(4, 3)
    np.testing.assert_array_equal(loaded(x).detach().numpy(), model(x).detach().numpy())


def test_safe_globals_admit_a_whole_model_under_weights_only():
    """pytorch/examples' word_language_model saves the model and loads it inside torch.serialization.safe_globals."""
    from graphnet.nn.modules import activation, container, dropout, linear, normalization, rnn, transformer

    model = graphnet.nn.Sequential(graphnet.nn.Linear(4, 4), graphnet.nn.LSTM(4, 3),
                                   transformer.TransformerEncoderLayer(4, 2, 8, activation=graphnet.nn.functional.relu))
    buf = io.BytesIO()
    graphnet.save(model, buf)
    trusted = [container.Sequential, linear.Linear, rnn.LSTM, transformer.TransformerEncoderLayer,
               activation.MultiheadAttention, linear.NonDynamicallyQuantizableLinear, dropout.Dropout,
               normalization.LayerNorm]
    buf.seek(0)
    with serialization.safe_globals(trusted), pytest.raises(pickle.UnpicklingError, match="GLOBAL graphnet.nn."
                                                            "_functional.activation.relu was not an allowed global"):
        graphnet.load(buf)  # the activation function is a global too
    buf.seek(0)
    with serialization.safe_globals(trusted + [graphnet.nn.functional.relu]):
        loaded = graphnet.load(buf)
    assert serialization.get_safe_globals() == []  # the block's globals are gone after it
    assert type(loaded) is graphnet.nn.Sequential and isinstance(loaded[1], graphnet.nn.LSTM)
    for (name, p), q in zip(model.state_dict().items(), loaded.state_dict().values()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
    serialization.add_safe_globals([(linear.Linear, "graphnet.nn.modules.linear.Linear")])
    try:
        buf = io.BytesIO()
        graphnet.save(graphnet.nn.Linear(2, 2), buf)
        buf.seek(0)
        assert isinstance(graphnet.load(buf), graphnet.nn.Linear)
    finally:
        serialization.clear_safe_globals()
    with pytest.raises(TypeError, match="expected classes or functions"):
        serialization.add_safe_globals([3])


_CALLS = []


def _record_call(tag):
    _CALLS.append(tag)
    return tag


class _Evil:
    def __reduce__(self):
        return (_record_call, ("code ran",))


def test_pickled_payload_never_runs_with_weights_only():
    _CALLS.clear()
    buf = io.BytesIO()
    graphnet.save({"x": _Evil()}, buf)
    assert _CALLS == []
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="_Evil"):
        graphnet.load(buf)
    buf.seek(0)
    with serialization.safe_globals([graphnet.nn.Linear]), pytest.raises(pickle.UnpicklingError,
                                                                         match="GLOBAL .*_record_call"):
        graphnet.load(buf)  # other safe globals admit nothing else
    assert _CALLS == []
    buf.seek(0)
    assert graphnet.load(buf, weights_only=False) == {"x": "code ran"} and _CALLS == ["code ran"]


def test_a_pickle_file_is_foreign_and_not_unpickled(tmp_path):
    _CALLS.clear()
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(RuntimeError, match=f"{FOREIGN}.*pickle"):
        graphnet.load(path, weights_only=False)
    assert _CALLS == []


def _zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("content,hint", [
    (_zip_bytes({"hello.txt": "hi"}), "zip archive without graphnet's format marker"),
    (_zip_bytes({"a/data.pkl": b"\x80\x02}q\x00.", "b/data.pkl": b"\x80\x02}q\x00."}), "PyTorch"),
    (b"just some text\n" * 10, "does not start like one"),
    (_zip_bytes({serialization.MARKER: json.dumps({"format": "other", "version": 1})}), FOREIGN),
])
def test_foreign_files(tmp_path, content, hint):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(RuntimeError, match=FOREIGN) as err:
        graphnet.load(path)
    assert hint in str(err.value) and "foreign.bin" in str(err.value)


def _refill_entry(raw, name, fill, compress_type=zipfile.ZIP_STORED):
    """A copy of the checkpoint bytes `raw` whose entry `name` is written by fill(old bytes, entry) as a stream."""
    src, out = zipfile.ZipFile(io.BytesIO(raw)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename != name:
                dst.writestr(info.filename, data)
                continue
            new = zipfile.ZipInfo(name)
            new.compress_type = compress_type
            with dst.open(new, "w", force_zip64=True) as entry:
                fill(data, entry)
    return out.getvalue()


def _rewrite_entry(raw, name, transform):
    """A copy of the checkpoint bytes `raw` with entry `name` replaced by transform(old bytes)."""
    return _refill_entry(raw, name, lambda old, entry: entry.write(transform(old)))


def _checkpoint_bytes(obj):
    buf = io.BytesIO()
    graphnet.save(obj, buf)
    return buf.getvalue()


def test_newer_format_version_is_reported():
    raw = _rewrite_entry(_checkpoint_bytes([1]), serialization.MARKER,
                         lambda b: json.dumps({"format": serialization.FORMAT, "version": 99}).encode())
    with pytest.raises(RuntimeError, match="newer graphnet.*version 99"):
        graphnet.load(io.BytesIO(raw))


def _set_device(data_json, loc):
    data = json.loads(data_json)
    for rec in data["tensors"]:
        rec["device"] = loc
    return json.dumps(data).encode()


def test_map_location_forms():
    t = graphnet.arange(6).reshape(2, 3)
    for loc in ("cpu", graphnet.device("cpu"), {"cpu": "cpu"}, lambda s, where: None):
        out = _roundtrip({"t": t}, map_location=loc)["t"]
        assert out.device == graphnet.device("cpu") and np.array_equal(out.numpy(), t.numpy())
    seen = []
    out = _roundtrip([t], map_location=lambda s, where: seen.append(where) or s * 10)[0]
    assert seen == ["cpu"] and np.array_equal(out.numpy(), t.numpy() * 10)


@pytest.mark.skipif(graphnet.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_checkpoint_on_cpu_machine_needs_map_location():
    raw = _rewrite_entry(_checkpoint_bytes({"w": graphnet.ones(2)}), serialization.DATA,
                         lambda b: _set_device(b, "cuda:0"))
    with pytest.raises(RuntimeError, match="map_location=graphnet.device\\('cpu'\\)"):
        graphnet.load(io.BytesIO(raw))
    for loc in ("cpu", {"cuda:0": "cpu"}):
        out = graphnet.load(io.BytesIO(raw), map_location=loc)["w"]
        assert out.device == graphnet.device("cpu") and out.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="Attempting to deserialize object on a CUDA device"):
        _roundtrip([graphnet.ones(1)], map_location="cuda")


class _ReadOnlyStream:
    """A file object without seek (like a socket or pipe)."""

    def __init__(self, data):
        self._buf = io.BytesIO(data)

    def read(self, n=-1):
        return self._buf.read(n)


def test_file_objects_and_paths(tmp_path):
    obj = {"a": graphnet.randn(3)}
    raw = _checkpoint_bytes(obj)
    out = graphnet.load(_ReadOnlyStream(raw))
    np.testing.assert_array_equal(out["a"].numpy(), obj["a"].numpy())
    graphnet.save(obj, str(tmp_path / "s.pt"))
    with open(tmp_path / "s.pt", "rb") as f:
        np.testing.assert_array_equal(graphnet.load(f)["a"].numpy(), obj["a"].numpy())
    with pytest.raises(TypeError, match="path or a writable binary file object"):
        graphnet.save(obj, 42)
    with pytest.raises(FileNotFoundError):
        graphnet.load(tmp_path / "missing.pt")


def test_file_permissions_follow_umask(tmp_path):
    mask = os.umask(0o022)
    try:
        graphnet.save([1], tmp_path / "p.pt")
    finally:
        os.umask(mask)
    assert (tmp_path / "p.pt").stat().st_mode & 0o777 == 0o644


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    graphnet.save({"v": graphnet.ones(3)}, path)
    before = path.read_bytes()

    def failing_save(file, arr, allow_pickle=False):
        file.write(b"\x00" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(serialization.np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        graphnet.save({"v": graphnet.zeros(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert graphnet.load(path)["v"].tolist() == [1.0, 1.0, 1.0]
    assert os.listdir(tmp_path) == ["ckpt.pt"]


_STALLED_SAVE = """
import sys, time, graphnet
class Stall:
    def __reduce__(self):  # pickled while save writes its temp file
        print("writing", flush=True)
        time.sleep(60)
graphnet.save({"w": graphnet.zeros(1000), "x": Stall()}, sys.argv[1])
"""
_HOLD_LOCK = """
import fcntl, sys, time
f = open(sys.argv[1], "rb")
fcntl.flock(f.fileno(), fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def _child(script, *args):
    """A Python child running `script` (with this checkout's graphnet), once it has printed its first line."""
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(graphnet.__file__))}
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline(), "the child process failed before it was ready"
    return proc


def _temps(folder, target):
    return sorted(n for n in os.listdir(folder) if re.fullmatch(rf"\.{re.escape(target)}\.[0-9a-f]{{12}}\.tmp", n))


def test_next_save_removes_temp_files_of_killed_saves(tmp_path):
    """Each save removes what earlier killed saves left: after 3 kills only the last one's temp file is there."""
    path = tmp_path / "ckpt.pt"
    for _ in range(3):
        proc = _child(_STALLED_SAVE, path)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(_temps(tmp_path, "ckpt.pt")) == 1
    graphnet.save({"w": graphnet.ones(3)}, path)
    assert os.listdir(tmp_path) == ["ckpt.pt"]
    assert graphnet.load(path)["w"].tolist() == [1.0, 1.0, 1.0]


def test_save_keeps_the_temp_file_of_a_live_save_and_of_other_targets(tmp_path):
    live, dead, other = (tmp_path / n for n in (".ckpt.pt.0123456789ab.tmp", ".ckpt.pt.ba9876543210.tmp",
                                                ".other.pt.0123456789ab.tmp"))
    for p in (live, dead, other):
        p.write_bytes(b"partial")
    holder = _child(_HOLD_LOCK, live)
    try:
        graphnet.save([1], tmp_path / "ckpt.pt")
    finally:
        holder.kill()
        holder.wait()
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.pt", live.name, other.name])


def test_reference_cycle_is_an_error():
    loop = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match="reference cycle"):
        graphnet.save(loop, io.BytesIO())


_OBJ = {"w": graphnet.randn(8, 8), "meta": {"epoch": 3, "names": ["a", "b"]}, "b": graphnet.arange(5)}


def _same(a, b):
    return (list(a) == list(b) and a["meta"] == b["meta"]
            and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in ("w", "b")))


def test_truncation_at_many_offsets(tmp_path):
    raw = _checkpoint_bytes(_OBJ)
    path = tmp_path / "cut.pt"
    for cut in sorted({0, 1, 3, 10, 29, 30, 40, 60, 200, len(raw) // 2, len(raw) - 100, len(raw) - 22, len(raw) - 1}):
        path.write_bytes(raw[:cut])
        with pytest.raises(RuntimeError, match=CORRUPT):
            graphnet.load(path)


def test_corruption_is_detected_or_harmless():
    """Flipping any byte either raises the clear error or (timestamps, unused fields) changes nothing."""
    raw = _checkpoint_bytes(_OBJ)
    detected = 0
    for pos in range(0, len(raw), 7):
        bad = bytearray(raw)
        bad[pos] ^= 0xFF
        try:
            out = graphnet.load(io.BytesIO(bytes(bad)))
        except serialization.CheckpointError as e:
            assert CORRUPT in str(e) or FOREIGN in str(e) or REFUSED in str(e), str(e)
            detected += 1
        else:
            assert _same(out, _OBJ), pos
    assert detected > len(raw) // 7 * 0.8


def test_flipped_tensor_byte_is_detected():
    raw = _checkpoint_bytes({"w": graphnet.zeros(64)})
    pos = raw.index(b"\x00" * 64)
    bad = raw[:pos] + b"\x01" + raw[pos + 1:]
    with pytest.raises(RuntimeError, match=CORRUPT):
        graphnet.load(io.BytesIO(bad))


def test_tensor_entry_not_matching_its_record_is_corrupt():
    raw = _checkpoint_bytes({"w": graphnet.zeros(4)})
    swapped = _rewrite_entry(raw, serialization.PREFIX + "tensors/0.npy", lambda b: _npy(np.zeros(5, np.float32)))
    with pytest.raises(RuntimeError, match=f"{CORRUPT}.*does not match"):
        graphnet.load(io.BytesIO(swapped))


def _peak_bytes(fn):
    """The most memory Python allocated while fn() ran (it is expected to raise)."""
    tracemalloc.start()
    try:
        fn()
    except Exception:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_compressed_entry_is_refused_before_reading(tmp_path):
    """A 1 MB file whose tensor entry inflates to 256 MiB of zeros: refused, and nothing near that is allocated."""
    def zeros_after_header(old, entry):
        entry.write(old[:-16])  # the .npy header of the 4 float32s
        for _ in range(256):
            entry.write(bytes(2**20))

    path = tmp_path / "bomb.pt"
    path.write_bytes(_refill_entry(_checkpoint_bytes({"w": graphnet.zeros(4)}), TENSOR_0, zeros_after_header,
                                   zipfile.ZIP_DEFLATED))
    assert path.stat().st_size < 2**21
    with pytest.raises(serialization.CheckpointError,
                       match=f"bomb.pt' is {REFUSED}: its entry '{TENSOR_0}' is compressed \\(zip method 8\\).*zip -0"):
        graphnet.load(path)
    assert _peak_bytes(lambda: graphnet.load(path)) < 2**22


def test_entry_larger_than_its_record_is_refused_before_reading():
    raw = _rewrite_entry(_checkpoint_bytes({"w": graphnet.zeros(4)}), TENSOR_0, lambda b: b + bytes(2**25))
    load = lambda: graphnet.load(io.BytesIO(raw))
    with pytest.raises(serialization.CheckpointError,
                       match=f"{REFUSED}: its entry '{TENSOR_0}' declares {128 + 16 + 2**25} bytes, but its tensor "
                             r"record \(float32, shape \[4\]\) needs 144"):
        load()
    assert _peak_bytes(load) < 2**22


def test_duplicate_entry_is_refused():
    raw = _checkpoint_bytes({"w": graphnet.zeros(4)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate name we write on purpose
        with zipfile.ZipFile(buf := io.BytesIO(raw), "a") as zf:
            zf.writestr(TENSOR_0, _npy(np.ones(4, np.float32)))
    with pytest.raises(serialization.CheckpointError, match=f"{REFUSED}: its entry '{TENSOR_0}' appears more than"):
        graphnet.load(io.BytesIO(buf.getvalue()))


def test_overlapping_entries_are_refused():
    """Tensor 1's directory record points inside tensor 0's bytes (the overlapping-entries zip bomb): refused."""
    small = _checkpoint_bytes({"a": graphnet.zeros(1, dtype=graphnet.uint8), "b": graphnet.ones(2)})
    zf = zipfile.ZipFile(io.BytesIO(small))
    entry_1 = small[zf.getinfo(TENSOR_1).header_offset:zf.start_dir]  # local header + bytes, just before the directory
    raw = bytearray(_checkpoint_bytes({"a": graphnet.from_numpy(np.frombuffer(entry_1, np.uint8).copy()),
                                       "b": graphnet.ones(2)}))
    record = raw.rindex(TENSOR_1.encode()) - 46  # the central directory record holding the name last
    struct.pack_into("<I", raw, record + 42, raw.index(entry_1))
    with pytest.raises(serialization.CheckpointError, match=f"{REFUSED}: its entry '{TENSOR_0}' overlaps"):
        graphnet.load(io.BytesIO(bytes(raw)))


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.cuda
@pytest.mark.skipif(not graphnet.cuda.is_available(), reason="needs a GPU (or the CUDA simulator)")
def test_cuda_tensors_roundtrip_and_map_to_cpu():
    t = graphnet.arange(4, dtype=graphnet.float32).to("cuda")
    out = _roundtrip({"t": t})["t"]
    assert out.device == graphnet.device("cuda:0") and out.tolist() == [0.0, 1.0, 2.0, 3.0]
    cpu = _roundtrip({"t": t}, map_location="cpu")["t"]
    assert cpu.device == graphnet.device("cpu") and cpu.tolist() == [0.0, 1.0, 2.0, 3.0]
    back = _roundtrip([graphnet.ones(2)], map_location={"cpu": "cuda:0"})[0]
    assert back.device == graphnet.device("cuda:0")
