"""Module machinery: registration, traversal names, state_dict, hooks, modes, dtype moves, repr, Parameter."""
import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import graphnet as torch
from examples.lenet import LeNet
from graphnet import nn

LENET_REPR = """LeNet(
  (conv1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
  (conv2): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))
  (fc1): Linear(in_features=400, out_features=120, bias=True)
  (fc2): Linear(in_features=120, out_features=84, bias=True)
  (fc3): Linear(in_features=84, out_features=10, bias=True)
)"""


def test_lenet_repr_and_parameter_names():
    net = LeNet()
    assert repr(net) == LENET_REPR
    names = [n for n, _ in net.named_parameters()]
    assert names == [f"{m}.{p}" for m in ("conv1", "conv2", "fc1", "fc2", "fc3") for p in ("weight", "bias")]
    assert [tuple(p.shape) for p in net.parameters()][:2] == [(6, 1, 5, 5), (6,)]
    assert sum(p.numel() for p in net.parameters()) == 61706


def test_lenet_forward_shape_and_backward():
    net = LeNet()
    out = net(torch.randn(2, 1, 32, 32))
    assert tuple(out.shape) == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None and tuple(p.grad.shape) == tuple(p.shape) for p in net.parameters())


def test_nested_repr_indents_like_pytorch():
    net = nn.Sequential(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), nn.Linear(3, 1, bias=False))
    assert repr(net) == ("Sequential(\n  (0): Sequential(\n    (0): Linear(in_features=2, out_features=3, bias=True)\n"
                         "    (1): ReLU()\n  )\n  (1): Linear(in_features=3, out_features=1, bias=False)\n)")


def test_nested_names_with_spaces_and_shared_parameters_once():
    block = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
    net = nn.Sequential()
    net.add_module("block 0", block)
    net.add_module("block 1", block)
    assert [n for n, _ in net.named_parameters()] == ["block 0.0.weight", "block 0.0.bias", "block 0.2.weight",
                                                      "block 0.2.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "block 0", "block 0.0", "block 0.1", "block 0.2"]
    assert len(list(net.children())) == 1


def test_shared_layer_gets_summed_gradient():
    shared = nn.Linear(3, 3)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(net.parameters())) == 2
    assert net[0].weight is net[2].weight
    x = torch.randn(2, 3)
    net(x).sum().backward()
    w, b = shared.weight.detach().numpy(), shared.bias.detach().numpy()
    h = x.numpy() @ w.T + b
    r = np.maximum(h, 0)
    g_w = np.ones((2, 3)).T @ r + ((np.ones((2, 3)) @ w) * (h > 0)).T @ x.numpy()
    np.testing.assert_allclose(shared.weight.grad.numpy(), g_w, rtol=1e-5, atol=1e-6)


def test_buffers_and_persistence():
    m = nn.Module()
    m.register_buffer("a", torch.zeros(2))
    m.register_buffer("b", torch.ones(1), persistent=False)
    m.p = nn.Parameter(torch.ones(3))
    assert [n for n, _ in m.named_buffers()] == ["a", "b"]
    assert list(m.state_dict().keys()) == ["p", "a"]
    m.a = torch.full((2,), 5.0)
    np.testing.assert_array_equal(m.state_dict()["a"].numpy(), [5.0, 5.0])
    with pytest.raises(TypeError, match="cannot assign 'int' as buffer 'a'"):
        m.a = 3


@pytest.mark.parametrize("call, err, match", [
    (lambda m: m.register_buffer("x.y", torch.zeros(1)), KeyError, "buffer name can.{1,2}t contain"),
    (lambda m: m.register_buffer("", torch.zeros(1)), KeyError, "be empty string"),
    (lambda m: m.register_buffer(3, torch.zeros(1)), TypeError, "buffer name should be a string. Got int"),
    (lambda m: m.register_buffer("train", torch.zeros(1)), KeyError, "attribute 'train' already exists"),
    (lambda m: m.register_buffer("z", [1.0]), TypeError, "cannot assign 'list' object to buffer 'z'"),
    (lambda m: m.register_parameter("w", torch.zeros(1)), TypeError, "cannot assign 'graphnet.FloatTensor' object to "
                                                                     "parameter 'w'"),
    (lambda m: m.add_module("c", 5), TypeError, "int is not a Module subclass"),
    (lambda m: m.add_module("a.b", nn.ReLU()), KeyError, "module name can.{1,2}t contain"),
])
def test_registration_errors(call, err, match):
    with pytest.raises(err, match=match):
        call(nn.Module())


def test_assignment_before_init_and_non_leaf_parameter():
    class Bad(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(1, 1)
            super().__init__()

    with pytest.raises(AttributeError, match=r"cannot assign module before Module.__init__\(\) call"):
        Bad()
    m = nn.Module()
    m.w = nn.Parameter(torch.ones(2))
    with pytest.raises(TypeError, match="cannot assign 'graphnet.FloatTensor' as parameter 'w'"):
        m.w = torch.ones(2)
    leaf = torch.ones(2, requires_grad=True)
    p = nn.Parameter(torch.ones(2))
    p.grad_fn = (leaf * 2).grad_fn
    with pytest.raises(ValueError, match="Cannot assign non-leaf Tensor to parameter 'q'"):
        m.register_parameter("q", p)


def test_getattr_setattr_delattr():
    m = nn.Module()
    m.lin = nn.Linear(2, 2)
    assert "lin" in m._modules and "lin" not in m.__dict__
    m.lin = nn.Parameter(torch.zeros(1))
    assert "lin" in m._parameters and "lin" not in m._modules
    del m.lin
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'lin'"):
        _ = m.lin
    m.plain = 3
    assert m.plain == 3 and "plain" in dir(m)


def test_parameter_is_a_tensor_sharing_storage():
    data = torch.randn(2, 2)
    p = nn.Parameter(data)
    assert isinstance(p, torch.Tensor) and p.requires_grad and p.is_leaf
    data.numpy()[0, 0] = 7.0
    assert p.detach().numpy()[0, 0] == 7.0
    assert repr(p).startswith("Parameter containing:\ntensor([[")
    assert repr(p).endswith("requires_grad=True)")
    assert type(p * 2) is torch.Tensor and type(p.data) is torch.Tensor
    frozen = nn.Parameter(torch.ones(1), requires_grad=False)
    assert not frozen.requires_grad
    assert type(copy.deepcopy(p)) is nn.Parameter and type(pickle.loads(pickle.dumps(p))) is nn.Parameter


def test_freezing_parameters_stops_gradients():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    net[0].weight.requires_grad = False
    net(torch.randn(3, 2)).sum().backward()
    assert net[0].weight.grad is None and net[0].bias.grad is not None
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_state_dict_round_trip_and_sharing():
    a, b = LeNet(), LeNet()
    sd = a.state_dict()
    assert isinstance(sd, OrderedDict) and list(sd)[:2] == ["conv1.weight", "conv1.bias"]
    assert not sd["fc1.weight"].requires_grad
    sd["fc3.bias"].numpy()[0] = 123.0  # shares storage with the parameter
    assert a.fc3.bias.detach().numpy()[0] == 123.0
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    x = torch.randn(1, 1, 32, 32)
    np.testing.assert_allclose(a(x).detach().numpy(), b(x).detach().numpy())


def test_load_state_dict_errors():
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    sd = net.state_dict()
    del sd["1.bias"]
    sd["extra"] = torch.zeros(1)
    msg = ('Error(s) in loading state_dict for Sequential:\n\tMissing key(s) in state_dict: "1.bias". \n\t'
           'Unexpected key(s) in state_dict: "extra". ')
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(sd)
    assert str(info.value) == msg
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert (missing, unexpected) == (["1.bias"], ["extra"])
    other = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 5))
    with pytest.raises(RuntimeError, match=r"size mismatch for 1.weight: copying a param with shape "
                                           r"graphnet.Size\(\[2, 3\]\) from checkpoint, the shape in current model "
                                           r"is graphnet.Size\(\[5, 3\]\)"):
        other.load_state_dict(net.state_dict())


def test_forward_hooks_modify_and_remove():
    lin = nn.Linear(2, 2)
    seen = []
    pre = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = lin.register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape)) or out + 1)
    out = lin(torch.ones(3, 2))
    np.testing.assert_allclose(out.detach().numpy(), np.tile(lin.bias.detach().numpy() + 1, (3, 1)), rtol=1e-6)
    assert seen == [(3, 2)]
    pre.remove()
    post.remove()
    x = torch.ones(1, 2)
    np.testing.assert_allclose(lin(x).detach().numpy(), x.numpy() @ lin.weight.detach().numpy().T +
                               lin.bias.detach().numpy(), rtol=1e-6)
    assert seen == [(3, 2)]


def test_missing_forward_raises():
    with pytest.raises(NotImplementedError, match='Module \\[Module\\] is missing the required "forward" function'):
        nn.Module()(1)


def test_train_eval_apply_zero_grad():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert net.training and net[1].training
    assert net.eval() is net and not net[1].training
    net.train()
    assert net[1].training
    visited = []
    net.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "Dropout", "Sequential"]
    net(torch.randn(1, 2)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert np.all(net[0].weight.grad.numpy() == 0)
    net.zero_grad()
    assert net[0].weight.grad is None
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train("yes")


def test_to_double_keeps_parameter_identity():
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    w = net[0].weight
    assert net.double() is net
    assert net[0].weight is w and w.dtype == torch.float64 and isinstance(w, nn.Parameter) and w.requires_grad
    assert net[1].running_mean.dtype == torch.float64 and net[1].num_batches_tracked.dtype == torch.int64
    net.to(torch.float32)
    assert w.dtype == torch.float32
    net.to("cpu")
    assert w.device == torch.device("cpu")
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point dtypes"):
        net.to(torch.int64)


def test_cuda_without_gpu_raises_clearly():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(Exception, match="(?i)cuda"):
        nn.Linear(2, 2).cuda()


def test_submodule_and_parameter_lookup():
    net = LeNet()
    assert net.get_submodule("fc1") is net.fc1
    assert net.get_parameter("fc2.bias") is net.fc2.bias
    with pytest.raises(AttributeError, match="has no attribute `nope`"):
        net.get_submodule("nope")
