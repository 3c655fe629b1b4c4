"""d2l.ai "Builders' guide: layers and modules", run on graphnet, then compiled.

    python examples/custom_blocks.py

MLP, MySequential, FixedHiddenMLP, NestMLP and the chimera as the book writes them; graphnet.compile runs the MLP as
one compiled program with the eager result, and falls back to eager (with a warning naming the line) for
FixedHiddenMLP, whose `while` loop depends on tensor values.
"""
import warnings

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(20, 256)
        self.out = nn.Linear(256, 10)

    def forward(self, X):
        return self.out(F.relu(self.hidden(X)))


class MySequential(nn.Module):
    def __init__(self, *args):
        super().__init__()
        for idx, module in enumerate(args):
            self._modules[str(idx)] = module

    def forward(self, X):
        for module in self._modules.values():
            X = module(X)
        return X


class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.rand_weight = torch.rand((20, 20), requires_grad=False)  # a constant, not a parameter
        self.linear = nn.Linear(20, 20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(torch.mm(X, self.rand_weight) + 1)
        X = self.linear(X)  # the same layer again: shared parameters
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


class NestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.linear = nn.Linear(32, 16)

    def forward(self, X):
        return self.linear(self.net(X))


def eager(X):
    """Each block of the chapter on one input batch."""
    net = MLP()
    print(net(X))
    seq = MySequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
    print(seq)
    print(seq(X))
    fixed = FixedHiddenMLP()
    print(fixed(X))
    chimera = nn.Sequential(NestMLP(), nn.Linear(16, 20), FixedHiddenMLP())
    print(chimera(X))
    return {"mlp": net, "seq": seq, "fixed": fixed, "chimera": chimera}


def compiled(nets, X):
    """compile(MLP) reproduces eager; compile(FixedHiddenMLP) warns about the value-dependent loop and runs eagerly."""
    mlp = nets["mlp"]
    cmlp = torch.compile(mlp)
    with torch.no_grad():
        y_compiled, y_eager = cmlp(X), mlp(X)
    print(f"compiled MLP == eager MLP: max |difference| {(y_compiled - y_eager).abs().max().item():.2e}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fixed_compiled = torch.compile(nets["fixed"])(X)
    messages = [str(w.message) for w in caught]
    for message in messages:
        print(f"warning: {message}")
    return {"mlp": (y_compiled, y_eager), "fixed": (fixed_compiled, nets["fixed"](X)), "warnings": messages}


def main():
    torch.manual_seed(0)
    X = torch.rand(2, 20)
    nets = eager(X)
    return {"X": X, "nets": nets, "compiled": compiled(nets, X)}


if __name__ == "__main__":
    main()
