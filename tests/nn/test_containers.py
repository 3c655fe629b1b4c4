"""Containers and the d2l.ai model-construction chapter's blocks (MLP, MySequential, FixedHiddenMLP, NestMLP, lazy)."""
from collections import OrderedDict

import numpy as np
import pytest

import graphnet as torch
from examples.custom_blocks import MLP, FixedHiddenMLP, MySequential, NestMLP
from graphnet import nn


def _np(t):
    return t.detach().numpy()


def _mlp_ref(x, lin1, lin2):
    h = np.maximum(x @ _np(lin1.weight).T + _np(lin1.bias), 0)
    return h @ _np(lin2.weight).T + _np(lin2.bias)


def test_sequential_indexing_slicing_len_append():
    layers = [nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)]
    net = nn.Sequential(*layers)
    assert len(net) == 3 and net[0] is layers[0] and net[-1] is layers[2]
    assert list(net) == layers
    head = net[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[1] is layers[1]
    x = torch.randn(5, 4)
    np.testing.assert_allclose(_np(net(x)), _mlp_ref(x.numpy(), layers[0], layers[2]), rtol=1e-5, atol=1e-6)
    net.append(nn.Sigmoid())
    assert len(net) == 4 and [n for n, _ in net.named_children()][-1] == "3"
    with pytest.raises(IndexError, match="index 4 is out of range for Sequential of length 4"):
        net[4]
    del net[1]
    assert [n for n, _ in net.named_children()] == ["0", "1", "2"] and isinstance(net[1], nn.Linear)


def test_sequential_from_ordered_dict():
    net = nn.Sequential(OrderedDict([("hidden", nn.Linear(3, 4)), ("act", nn.Tanh())]))
    assert net.hidden is net[0]
    assert [n for n, _ in net.named_parameters()] == ["hidden.weight", "hidden.bias"]
    assert repr(net) == ("Sequential(\n  (hidden): Linear(in_features=3, out_features=4, bias=True)\n"
                         "  (act): Tanh()\n)")


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.ReLU())
    assert len(layers) == 4 and len(list(layers.parameters())) == 6
    assert repr(layers).startswith("ModuleList(\n  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
                                   "  (3): ReLU()\n)")
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    holder = nn.Sequential(nn.ModuleList([nn.ReLU(), nn.ReLU()]))
    assert repr(holder) == "Sequential(\n  (0): ModuleList(\n    (0-1): 2 x ReLU()\n  )\n)"
    d = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    d["c"] = nn.Tanh()
    assert list(d.keys()) == ["a", "b", "c"] and "b" in d and len(d) == 3
    assert [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias"]


def test_parameter_list_and_dict():
    plist = nn.ParameterList([nn.Parameter(torch.ones(2)), torch.zeros(3)])
    assert len(plist) == 2 and isinstance(plist[1], nn.Parameter)
    assert [n for n, _ in plist.named_parameters()] == ["0", "1"]
    pdict = nn.ParameterDict({"w": torch.ones(2, 2)})
    assert isinstance(pdict["w"], nn.Parameter) and list(pdict.keys()) == ["w"]
    assert repr(pdict) == "ParameterDict(  (w): Parameter containing: [graphnet.FloatTensor of size 2x2])"


def test_d2l_mlp_and_my_sequential():
    X = torch.rand(2, 20)
    mlp = MLP()
    np.testing.assert_allclose(_np(mlp(X)), _mlp_ref(X.numpy(), mlp.hidden, mlp.out), rtol=1e-5, atol=1e-5)
    seq = MySequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    np.testing.assert_allclose(_np(seq(X)), _mlp_ref(X.numpy(), seq._modules["0"], seq._modules["2"]), rtol=1e-5,
                               atol=1e-5)


def test_d2l_fixed_hidden_mlp_constant_weight_and_while_loop():
    net = FixedHiddenMLP()
    X = torch.rand(2, 20)
    out = net(X)
    assert [n for n, _ in net.named_parameters()] == ["linear.weight", "linear.bias"]
    w, b, r = _np(net.linear.weight), _np(net.linear.bias), net.rand_weight.numpy()
    h = X.numpy() @ w.T + b
    h = np.maximum(h @ r + 1, 0) @ w.T + b
    while np.abs(h).sum() > 1:
        h /= 2
    np.testing.assert_allclose(out.item(), h.sum(), rtol=1e-4)
    assert not net.rand_weight.requires_grad


def test_d2l_chimera_of_nested_blocks():
    chimera = nn.Sequential(NestMLP(), nn.Linear(16, 20), FixedHiddenMLP())
    out = chimera(torch.rand(2, 20))
    assert out.ndim == 0
    assert [n for n, _ in chimera.named_parameters()][:2] == ["0.net.0.weight", "0.net.0.bias"]
    assert "2.linear.bias" in chimera.state_dict()


def test_d2l_parameter_access_and_init_with_apply():
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
    assert repr(net[0].weight) == "<UninitializedParameter>"
    net(torch.rand(2, 4))
    assert tuple(net[0].weight.shape) == (8, 4) and tuple(net[2].weight.shape) == (1, 8)
    assert type(net[2].bias) is nn.Parameter and type(net[0]) is nn.Linear

    def init_constant(m):
        if type(m) is nn.Linear:
            nn.init.constant_(m.weight, 1)
            nn.init.zeros_(m.bias)

    net.apply(init_constant)
    np.testing.assert_array_equal(_np(net[0].weight), np.ones((8, 4)))
    net[0].weight.data[:] += 1
    net[0].weight.data[0, 0] = 42
    assert net[0].weight.data[0].tolist() == [42.0, 2.0, 2.0, 2.0]
    np.testing.assert_array_equal(_np(net.state_dict()["2.bias"]), [0.0])


def test_d2l_tied_parameters():
    shared = nn.Linear(8, 8)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))
    net(torch.rand(2, 4))
    net[2].weight.data[0, 0] = 100
    assert net[2].weight.data[0, 0].item() == net[4].weight.data[0, 0].item() == 100
