"""Files exchanged with real PyTorch: torch.save (zip and legacy pre-1.6 format) -> graphnet.load,
graphnet.save(format='torch') -> torch.load(weights_only=True), state_dicts both ways, and a small LeNet trained in
PyTorch predicting the same in graphnet."""
import collections
import pickle

import numpy as np
import pytest
from torch_twins import System, small

import graphnet
from graphnet import nn
from graphnet.nn import functional as F

torch = pytest.importorskip("torch")

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def _same(a, b):
    """torch object `a` equals torch object `b` exactly: values, dtypes, types, strides, offsets, containers."""
    if isinstance(a, torch.Tensor):
        return (type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
                and a.storage_offset() == b.storage_offset() and a.requires_grad == b.requires_grad
                and torch.equal(a.detach(), b.detach()))
    if isinstance(a, dict):
        return type(a) is type(b) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _through_graphnet(obj, tmp_path, legacy=False):
    """torch.save(obj) (legacy: in the pre-1.6 format) -> graphnet.load -> graphnet.save(format='torch') ->
    torch.load(weights_only=True)."""
    torch.save(obj, tmp_path / "in.pt", _use_new_zipfile_serialization=not legacy)
    graphnet.save(graphnet.load(tmp_path / "in.pt"), tmp_path / "out.pt", format="torch")
    return torch.load(tmp_path / "out.pt", weights_only=True)




@pytest.mark.parametrize("legacy", [False, True])
def test_state_dict_and_optimizer_state_round_trip_exactly(tmp_path, legacy):
    model = small(torch.nn)
    model.bn(torch.randn(3, 2, 4, 4))
    opt = torch.optim.Adam(model.parameters())
    model.fc(torch.randn(2, 3)).sum().backward()
    opt.step()
    obj = {"model": model.state_dict(), "opt": opt.state_dict()}
    assert _same(obj, _through_graphnet(obj, tmp_path, legacy))


@pytest.mark.parametrize("legacy", [False, True])
def test_every_dtype_nested_containers_and_metadata(tmp_path, legacy):
    obj = {d: (torch.arange(-3, 5) % 3).to(getattr(torch, d)) for d in DTYPES}
    obj["bf16"] = torch.tensor([1.5, -0.25, 3.140625, 1e30, float("nan")]).to(torch.bfloat16)
    obj["half"] = torch.tensor([65504.0, 6e-8, float("-inf")], dtype=torch.float16)
    obj["nested"] = [collections.OrderedDict(a=torch.ones(2)), (torch.zeros(()), "s", 3, 2.5, None, True, b"x")]
    obj["param"] = torch.nn.Parameter(torch.randn(3))
    obj["leaf"] = torch.ones(2, requires_grad=True)
    obj["meta"] = [torch.float16, torch.bfloat16, torch.device("cpu"), torch.Size([2, 3]), {1, 2}]
    back = _through_graphnet(obj, tmp_path, legacy)
    nan = back.pop("bf16")
    assert torch.equal(torch.isnan(nan), torch.isnan(obj.pop("bf16")))
    assert _same(obj, back)


@pytest.mark.parametrize("legacy", [False, True])
def test_shared_views_stay_shared(tmp_path, legacy):
    x = torch.arange(24.0).reshape(4, 6)
    obj = {"x": x, "t": x.t(), "col": x[:, 3], "strided": x[::2, 1::2], "row": x[2]}
    back = _through_graphnet(obj, tmp_path, legacy)
    assert _same(obj, back)
    assert len({v.untyped_storage().data_ptr() for v in back.values()}) == 1
    mine = graphnet.load(tmp_path / "in.pt")
    mine["x"][2, 3] = -7.0
    assert float(mine["t"][3, 2]) == -7.0 and float(mine["col"][2]) == -7.0 and float(mine["row"][3]) == -7.0


def test_legacy_file_refuses_mmap_with_torchs_message(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    for f in (str(path), path):
        with pytest.raises(RuntimeError) as theirs:
            torch.load(f, mmap=True, weights_only=True)
        with pytest.raises(RuntimeError) as ours:
            graphnet.load(f, mmap=True)
        assert str(ours.value) == str(theirs.value)


def test_legacy_malicious_file_is_refused_like_torch(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "pwned"
    torch.save({"w": torch.ones(2), "x": System(f"touch {marker}")}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        torch.load(path, weights_only=True)
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|os)\.system.*not admitted"):
        graphnet.load(path)
    assert not marker.exists()


def test_torch_mmap_reads_our_file(tmp_path):
    obj = {"w": torch.randn(5, 7), "b": torch.randn(7).to(torch.bfloat16)}
    torch.save(obj, tmp_path / "in.pt")
    graphnet.save(graphnet.load(tmp_path / "in.pt", mmap=True), tmp_path / "out.pt", format="torch")
    assert _same(obj, torch.load(tmp_path / "out.pt", weights_only=True, mmap=True))


def test_state_dict_exchange_both_ways(tmp_path):
    tmodel, gmodel = small(torch.nn), small(nn)
    tmodel.bn(torch.randn(3, 2, 4, 4))
    torch.save(tmodel.state_dict(), tmp_path / "t.pt")
    assert gmodel.load_state_dict(graphnet.load(tmp_path / "t.pt")) == ([], [])
    graphnet.save(gmodel.state_dict(), tmp_path / "g.pt", format="torch")
    other = small(torch.nn)
    result = other.load_state_dict(torch.load(tmp_path / "g.pt", weights_only=True))
    assert not result.missing_keys and not result.unexpected_keys
    assert _same(tmodel.state_dict(), other.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    tout, _ = tmodel.lstm(torch.from_numpy(x))
    gout, _ = gmodel.lstm(graphnet.from_numpy(x))
    np.testing.assert_allclose(gout.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    tatt, _ = tmodel.attn(*[torch.from_numpy(x)] * 3)
    gatt, _ = gmodel.attn(*[graphnet.from_numpy(x)] * 3)
    np.testing.assert_allclose(gatt.detach().numpy(), tatt.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_gru_and_bidirectional_lstm_names_match():
    for tmod, gmod in [(torch.nn.GRU(4, 3, num_layers=2), nn.GRU(4, 3, num_layers=2)),
                       (torch.nn.LSTM(4, 3, bidirectional=True), nn.LSTM(4, 3, bidirectional=True))]:
        sd = {k: graphnet.from_numpy(v.detach().numpy().copy()) for k, v in tmod.state_dict().items()}
        assert gmod.load_state_dict(sd) == ([], [])


class TorchLeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv2d(1, 4, 5), torch.nn.Conv2d(4, 8, 5)
        self.fc1, self.fc2 = torch.nn.Linear(8 * 4 * 4, 32), torch.nn.Linear(32, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 4, 5), nn.Conv2d(4, 8, 5)
        self.fc1, self.fc2 = nn.Linear(8 * 4 * 4, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def test_lenet_trained_in_torch_predicts_the_same_in_graphnet(tmp_path):
    from graphnet.data.datasets import MNIST, PACKAGED_MNIST

    images, labels = MNIST(PACKAGED_MNIST, train=False).as_tensors()
    x, y = images.numpy()[:64], labels.numpy()[:64]
    torch.manual_seed(0)
    tnet = TorchLeNet()
    opt = torch.optim.SGD(tnet.parameters(), lr=0.1, momentum=0.9)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    torch.save({"model": tnet.state_dict(), "opt": opt.state_dict()}, tmp_path / "lenet.pt")
    ckpt = graphnet.load(tmp_path / "lenet.pt")
    gnet = LeNet()
    gnet.load_state_dict(ckpt["model"])
    with torch.no_grad():
        expected = tnet(torch.from_numpy(x)).numpy()
    got = gnet(graphnet.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert (got.argmax(1) == expected.argmax(1)).all()
    gopt = graphnet.optim.SGD(gnet.parameters(), lr=0.1, momentum=0.9)
    gopt.load_state_dict(ckpt["opt"])
    np.testing.assert_array_equal(gopt.state_dict()["state"][0]["momentum_buffer"].numpy(),
                                  opt.state_dict()["state"][0]["momentum_buffer"].numpy())
