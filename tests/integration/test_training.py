"""Real training on real digits: the Digits MLP, and the tutorial LeNet on the shipped MNIST split, eager and
compiled, reach their accuracy targets within the CI budget."""
import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
from examples.lenet import LeNet
from examples.train_lenet import evaluate, load_data
from graphnet.data import DataLoader, TensorDataset, random_split
from graphnet.data.datasets import Digits


def _fit(model, step, loader, epochs):
    for _ in range(epochs):
        for x, y in loader:
            step(x, y)


def _adam_step(model, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def test_digits_mlp_reaches_95_percent():
    torch.manual_seed(0)
    train, test = random_split(Digits(), [0.8, 0.2], generator=torch.Generator().manual_seed(0))
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    _fit(model, _adam_step(model, 3e-3), DataLoader(train, batch_size=32, shuffle=True), epochs=15)
    assert evaluate(model, test, "cpu") >= 0.95


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_lenet_on_mnist_split_reaches_95_percent(compiled):
    torch.manual_seed(0)
    train, test = load_data(None)
    model = LeNet()
    step = _adam_step(model, 2e-3)
    loader = DataLoader(train, batch_size=64, shuffle=True, drop_last=True)
    _fit(model, torch.compile(step) if compiled else step, loader, epochs=2)
    accuracy = evaluate(model, TensorDataset(*(t[:2000] for t in test.tensors)), "cpu")
    assert accuracy >= 0.95, f"test accuracy {accuracy:.2%}"
    assert np.isfinite(model.fc3.weight.detach().numpy()).all()
