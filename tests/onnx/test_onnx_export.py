"""graphnet.onnx.export: the traced graph written as ONNX, checked by onnx.checker and run by ONNX Runtime; outputs
within 1e-5 of graphnet eager for an MLP, a LeNet, a small residual CNN with BatchNorm, a CIFAR ResNet-20
layout (projection shortcuts), a resnet18-style stem (7x7/2 conv, MaxPool2d(3, 2, 1), AdaptiveAvgPool2d((1, 1))),
a ConvTranspose2d generator and the char-level GPT, with a dynamic batch axis tried at 1, 7 and 64; unsupported ops
and bad arguments raise errors naming them."""
import io
import os
import sys

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.onnx

ort = pytest.importorskip("onnxruntime")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from examples.charlm import GPT, GPTConfig  # noqa: E402


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.f1, self.f2 = nn.Linear(400, 120), nn.Linear(120, 10)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.c2(F.max_pool2d(F.relu(self.c1(x)), 2))), 2)
        return F.log_softmax(self.f2(F.relu(self.f1(x.flatten(1)))), dim=-1)


class Residual(nn.Module):
    """conv-BN-ReLU, a residual add, adaptive pooling to 1x1 and a Linear: the pieces of a ResNet."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(h + self.bn2(self.conv2(h)))
        return self.fc(h.mean((2, 3)))


class BasicBlock(nn.Module):
    """CIFAR ResNet basic block: two 3x3 conv-BN, a residual add; a 1x1 stride-2 conv-BN projection when it shrinks."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet-20's layout at small width (3 stages of 3 blocks, 16/32/64 channels scaled by width/16);
    stem="imagenet" puts torchvision resnet18's 7x7 stride-2 conv and MaxPool2d(3, 2, 1) in front."""

    def __init__(self, width=4, blocks=3, stem="cifar"):
        super().__init__()
        w = [width, 2 * width, 4 * width]
        if stem == "cifar":
            self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, padding=1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
        else:
            self.stem = nn.Sequential(nn.Conv2d(3, w[0], 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(w[0]),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
            self.pool = nn.AdaptiveAvgPool2d((1, 1))
        layers, cin = [], w[0]
        for i, cout in enumerate(w):
            for b in range(blocks):
                layers.append(BasicBlock(cin, cout, 2 if b == 0 and i > 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def _generator():
    """DCGAN-style upsampling: ConvTranspose2d with BatchNorm, groups, output_padding, and output_padding >= stride
    (below the dilation), which runs as a crop and a zero pad."""
    return nn.Sequential(nn.ConvTranspose2d(8, 6, 4, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2), nn.ReLU(),
                         nn.ConvTranspose2d(4, 1, 3, padding=1, output_padding=1, dilation=2), nn.Tanh())


def _mlp():
    return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 16), nn.Tanh(),
                         nn.Linear(16, 5), nn.Softmax(dim=-1))


class LogExp(nn.Module):
    """log1p/expm1/log2/log10, which ONNX has no operator for, lowered to Log/Exp with Add/Sub/Div."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        x = self.fc(x)
        return torch.log1p(x.abs()) + torch.expm1(x) * torch.log2(x.abs() + 1) - torch.log10(x.abs() + 2)


CASES = {
    "log_exp": (LogExp, lambda b: torch.randn(b, 6)),
    "mlp": (_mlp, lambda b: torch.randn(b, 12)),
    "lenet": (LeNet, lambda b: torch.randn(b, 1, 28, 28)),
    "generator": (_generator, lambda b: torch.randn(b, 8, 1, 1)),
    "residual": (Residual, lambda b: torch.randn(b, 3, 8, 8)),
    "resnet20": (ResNet, lambda b: torch.randn(b, 3, 32, 32)),
    "resnet18_stem": (lambda: ResNet(blocks=1, stem="imagenet"), lambda b: torch.randn(b, 3, 32, 32)),
    "gpt": (lambda: GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32)),
            lambda b: torch.randint(0, 65, (b, 16))),
}


def _train_a_little(model, make):
    """A few steps in train mode, so BatchNorm's running statistics are not the defaults the export must read."""
    model.train()
    for _ in range(2):
        x = make(4)
        if x.dtype == torch.float32:
            model(x).sum().backward()


@pytest.mark.parametrize("name", sorted(CASES))
def test_exported_models_run_in_onnxruntime_and_match_eager_at_every_batch_size(name, tmp_path):
    torch.manual_seed(0)
    build, make = CASES[name]
    model = build()
    _train_a_little(model, make)
    path = tmp_path / f"{name}.onnx"
    proto = graphnet.onnx.export(model, (make(3),), str(path), input_names=["x"], output_names=["y"],
                                 dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    read = {name for node in proto.graph.node for name in node.input}
    assert all(init.name in read for init in proto.graph.initializer)  # no unused buffer (num_batches_tracked)
    assert model.training  # export traces in eval mode and puts the model back
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    model.eval()
    for batch in (1, 7, 64):
        x = make(batch)
        with torch.no_grad():
            want = model(x).numpy()
        got = session.run(None, {"x": x.numpy()})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.onnx"]  # written whole: no temp file left


def test_export_to_a_stream_and_fixed_shapes_by_default():
    torch.manual_seed(0)
    model, buf = _mlp().eval(), io.BytesIO()
    proto = graphnet.onnx.export(model, torch.randn(2, 12), buf)
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [2, 12]
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 12)
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"input": x.numpy()})[0], model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_an_op_without_onnx_lowering_names_the_op_and_the_line():
    class Scan(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, dim=1)  # the line the error names

    with pytest.raises(graphnet.onnx.UnsupportedOperatorError, match=r"op 'cumsum' from .*test_onnx_export.py:\d+"):
        graphnet.onnx.export(Scan(), torch.randn(2, 3), io.BytesIO())


def test_bad_arguments_are_refused():
    model = _mlp()
    with pytest.raises(ValueError, match="opset_version 13 is not supported"):
        graphnet.onnx.export(model, torch.randn(2, 12), io.BytesIO(), opset_version=13)
    with pytest.raises(ValueError, match="2 input_names for 1 tensor inputs"):
        graphnet.onnx.export(model, torch.randn(2, 12), io.BytesIO(), input_names=["a", "b"])


def test_max_pool_indices_as_an_output_are_refused_naming_them():
    class Pool(nn.Module):
        def forward(self, x):
            return F.max_pool2d(x, 2, return_indices=True)

    with pytest.raises(graphnet.onnx.UnsupportedOperatorError, match="max_pool2d's indices output"):
        graphnet.onnx.export(Pool(), torch.randn(1, 1, 4, 4), io.BytesIO())
