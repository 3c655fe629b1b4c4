"""d2l.ai "Builders' guide: custom layers", run on graphnet.

    python examples/custom_layers.py

CenteredLayer has no parameters; MyLinear reads `.data` as the book does (so no gradient reaches its parameters);
TrainableLinear uses the Parameters themselves, so training reaches them.
"""
import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F


class CenteredLayer(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, X):
        return X - X.mean()


class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units,))

    def forward(self, X):
        linear = torch.matmul(X, self.weight.data) + self.bias.data
        return F.relu(linear)


class TrainableLinear(MyLinear):
    """MyLinear without `.data`: the forward is recorded, so backward fills weight.grad and bias.grad."""

    def forward(self, X):
        return F.relu(torch.matmul(X, self.weight) + self.bias)


def centered():
    layer = CenteredLayer()
    out = layer(torch.tensor([1.0, 2, 3, 4, 5]))
    print(out)
    net = nn.Sequential(nn.Linear(8, 128), CenteredLayer())
    Y = net(torch.rand(4, 8))
    print(Y.mean())
    return out, Y


def custom_linear():
    linear = MyLinear(5, 3)
    print(linear.weight)
    X = torch.rand(2, 5)
    print(linear(X))
    net = nn.Sequential(MyLinear(64, 8), MyLinear(8, 1))
    print(net(torch.rand(2, 64)))
    return linear, X


def trainable():
    """The `.data` version records nothing (its output cannot be backpropagated); the Parameter version trains."""
    X = torch.rand(2, 5)
    frozen, live = MyLinear(5, 3), TrainableLinear(5, 3)
    live.load_state_dict(frozen.state_dict())
    out = frozen(X).sum()
    print(f"MyLinear (uses .data): output requires_grad={out.requires_grad}")
    try:
        out.backward()
    except RuntimeError as e:
        print(f"  backward() -> RuntimeError: {e}")
    live(X).sum().backward()
    print(f"TrainableLinear: weight.grad =\n{live.weight.grad}")
    return X, frozen, live


def main():
    torch.manual_seed(0)
    return {"centered": centered(), "linear": custom_linear(), "trainable": trainable()}


if __name__ == "__main__":
    main()
