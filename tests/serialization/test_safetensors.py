"""graphnet.utils.safetensors: round trips of every dtype, lazy safe_open, files exchanged with safetensors.torch,
damaged files."""
import numpy as np
import pytest

import graphnet
from graphnet.utils import safetensors as gst

pytest.importorskip("safetensors")
ml_dtypes = pytest.importorskip("ml_dtypes")

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def _tensors():
    out = {d: graphnet.tensor([0, 1, 2, 0, 1, 2]).to(getattr(graphnet, d)) for d in DTYPES}
    out["bf16"] = graphnet.tensor([1.5, -0.25, 3.140625, 1e30], dtype=graphnet.bfloat16)
    out["noncontiguous"] = graphnet.arange(6.0).reshape(2, 3).t()
    out["scalar"] = graphnet.tensor(2.5)
    out["empty"] = graphnet.zeros(0, 4)
    return out


def _assert_same(got, want):
    assert list(got) == list(want) or sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and tuple(got[k].shape) == tuple(want[k].shape), k
        np.testing.assert_array_equal(got[k].numpy(), want[k].numpy())


def test_file_round_trip_with_metadata(tmp_path):
    path = tmp_path / "t.safetensors"
    gst.save_file(_tensors(), path, metadata={"format": "pt", "step": "3"})
    back = gst.load_file(path)
    _assert_same(back, _tensors())
    back["float32"].add_(1)  # loaded tensors own writable memory
    with gst.safe_open(path, framework="graphnet") as f:
        assert f.metadata() == {"format": "pt", "step": "3"}
        assert sorted(f.keys()) == sorted(_tensors())
        assert f.get_tensor("bf16").dtype == graphnet.bfloat16
        with pytest.raises(KeyError):
            f.get_tensor("nope")


def test_bytes_round_trip():
    _assert_same(gst.load(gst.save(_tensors())), _tensors())


def test_numpy_framework_gives_arrays(tmp_path):
    path = tmp_path / "t.safetensors"
    gst.save_file(_tensors(), path)
    with gst.safe_open(path, framework="np") as f:
        arr = f.get_tensor("bf16")
    assert isinstance(arr, np.ndarray) and arr.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(arr.astype(np.float32), _tensors()["bf16"].numpy())


def test_state_dict_round_trip(tmp_path):
    model = graphnet.nn.Sequential(graphnet.nn.Linear(3, 4), graphnet.nn.BatchNorm1d(4))
    gst.save_file(model.state_dict(), tmp_path / "m.safetensors")
    other = graphnet.nn.Sequential(graphnet.nn.Linear(3, 4), graphnet.nn.BatchNorm1d(4))
    assert other.load_state_dict(gst.load_file(tmp_path / "m.safetensors")) == ([], [])
    _assert_same(other.state_dict(), model.state_dict())


def test_exchange_with_safetensors_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors import torch as st

    tensors = {d: torch.tensor([0, 1, 2, 0, 1, 2]).to(getattr(torch, d)) for d in DTYPES}
    tensors["bf16"] = torch.randn(3, 2).to(torch.bfloat16)
    st.save_file(tensors, tmp_path / "t.safetensors", metadata={"a": "b"})
    mine = gst.load_file(tmp_path / "t.safetensors")
    for k, v in tensors.items():
        assert str(mine[k].dtype).split(".")[-1] == str(v.dtype).split(".")[-1], k
        half = v.dtype == torch.bfloat16
        np.testing.assert_array_equal(mine[k].float().numpy() if half else mine[k].numpy(),
                                      v.float().numpy() if half else v.numpy())
    gst.save_file(mine, tmp_path / "g.safetensors", metadata={"a": "b"})
    back = st.load_file(tmp_path / "g.safetensors")
    assert all(back[k].dtype == v.dtype and torch.equal(back[k], v) for k, v in tensors.items())
    assert all(torch.equal(st.load(gst.save(mine))[k], v) for k, v in tensors.items())


def test_damaged_files_name_the_file(tmp_path):
    path = tmp_path / "t.safetensors"
    gst.save_file({"w": graphnet.ones(16)}, path)
    raw = path.read_bytes()
    bad = tmp_path / "bad.safetensors"
    for data in (raw[:-3], raw[:5], b"", b"\xff" * 8 + raw[8:], raw[:8] + b"{not json" + raw[17:]):
        bad.write_bytes(data)
        with pytest.raises(gst.SafetensorsError, match="'.*bad.safetensors' cannot be read as a safetensors file"):
            gst.load_file(bad)
    with pytest.raises(gst.SafetensorsError, match="not a valid safetensors file"):
        gst.load(raw[:-1])


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="Key `a` is invalid, expected graphnet.Tensor"):
        gst.save({"a": [1, 2]})
    with pytest.raises(TypeError, match="Expected a dict"):
        gst.save([graphnet.ones(1)])
    with pytest.raises(ValueError, match="framework 'tf' is not supported"):
        gst.safe_open(tmp_path / "x", framework="tf")
